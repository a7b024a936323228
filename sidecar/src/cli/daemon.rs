//! `lamin daemon`: the job worker, started from its flags.

use lamin_sidecar::worker::daemon::{self, DaemonConfig};
use lamin_sidecar::worker::retention::Retention;

use super::DaemonArgs;

pub async fn run(args: DaemonArgs) -> anyhow::Result<()> {
    daemon::run(DaemonConfig {
        database_url: args.db.database_url,
        channel: args.channel,
        sweep_interval_s: args.sweep_interval_s,
        concurrency: args.concurrency,
        lease_s: args.lease_s,
        shutdown_grace_s: args.shutdown_grace_s,
        import_dir: args.import_dir,
        cache_dir: args.cache_dir,
        storage_sweep_interval_s: args.storage_sweep_interval_s,
        upload_grace_s: args.upload_grace_s,
        retention: Retention {
            keep_done: args.keep_done_jobs,
            keep_failed: args.keep_failed_jobs,
        },
        prune_interval_s: args.prune_interval_s,
    })
    .await
}
