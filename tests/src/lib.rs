//! Harness for end-to-end tests: a throw-away Postgres cluster with the lamin
//! extension, and the sidecar binary, both torn down when dropped (also when a
//! test panics).

mod azurite;
pub mod citus;
mod cluster;
mod data;
pub mod fingerprint;
mod jobs;
pub mod netns;
pub mod releases;
mod s3;
pub mod schema_dump;
mod sidecar;
mod system;

pub use azurite::Azurite;
pub use cluster::{check, Cluster};
pub use data::{
    cluster_with_storage, db_message, fails, fixture, import_cl_cut, import_default_sources, lamin,
    lamin_with_env, ok, percentile, real_source, stderr_text, stdout_text,
};
pub use jobs::{await_job, job_status, register_job, wait_until};
pub use s3::S3Server;
pub use sidecar::Sidecar;
pub use system::{free_port, give_to_pg_user, lamin_bin, pg_bindir, random_password};
