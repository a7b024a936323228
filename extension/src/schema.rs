//! The registries' tables, views and SQL functions: hand-written SQL in the
//! top-level `sql/` folder, included here in order. The first file runs after
//! the Rust functions its DEFAULTs and CHECKs call.

use pgrx::prelude::*;

// Named in `requires` below; pgrx resolves them by name, so rustc sees no use.
#[allow(unused_imports)]
use crate::{
    keys::{check_key, suffix_from_key},
    search::{is_stop_word, normalize_term, term_kind, term_kind_name},
    storage::parse_storage_root,
    uid::{
        admit_uid, base62_md5, is_vouched_head, new_family_uid, uid, version_number,
        version_suffix, vouch_heads,
    },
    users::current_user_id,
    version::{library_version, version},
};

extension_sql_file!(
    "../../sql/01_core.sql",
    name = "core",
    requires = [
        uid,
        new_family_uid,
        is_vouched_head,
        vouch_heads,
        version_suffix,
        version_number,
        check_key,
        suffix_from_key,
        parse_storage_root,
        normalize_term,
        is_stop_word,
        term_kind,
        term_kind_name,
        version,
        library_version,
        current_user_id
    ]
);
extension_sql_file!(
    "../../sql/02_storage.sql",
    name = "storage",
    requires = ["core"]
);
extension_sql_file!(
    "../../sql/03_transform_run.sql",
    name = "transform_run",
    requires = ["storage"]
);
extension_sql_file!(
    "../../sql/04_artifact_collection.sql",
    name = "artifact_collection",
    requires = ["transform_run"]
);
extension_sql_file!(
    "../../sql/05_feature_schema_ulabel.sql",
    name = "feature_schema_ulabel",
    requires = ["artifact_collection"]
);
extension_sql_file!(
    "../../sql/06_links.sql",
    name = "links",
    requires = ["feature_schema_ulabel"]
);
extension_sql_file!(
    "../../sql/07_versioning.sql",
    name = "versioning",
    requires = ["links"]
);
extension_sql_file!(
    "../../sql/08_save.sql",
    name = "save",
    requires = ["versioning"]
);
extension_sql_file!(
    "../../sql/09_track.sql",
    name = "track",
    requires = ["save"]
);
extension_sql_file!(
    "../../sql/10_annotate.sql",
    name = "annotate",
    requires = ["track"]
);
extension_sql_file!(
    "../../sql/11_lineage.sql",
    name = "lineage",
    requires = ["annotate"]
);
extension_sql_file!(
    "../../sql/12_describe_delete.sql",
    name = "describe_delete",
    requires = ["lineage"]
);
extension_sql_file!(
    "../../sql/13_views.sql",
    name = "views",
    requires = ["describe_delete"]
);
extension_sql_file!(
    "../../sql/14_backup.sql",
    name = "backup",
    requires = ["views"]
);
extension_sql_file!(
    "../../sql/15_search.sql",
    name = "search",
    requires = ["backup"]
);
extension_sql_file!(
    "../../sql/16_bionty.sql",
    name = "bionty",
    requires = ["search", base62_md5]
);
extension_sql_file!(
    "../../sql/17_bionty_import.sql",
    name = "bionty_import",
    requires = ["bionty"]
);
extension_sql_file!(
    "../../sql/18_jobs.sql",
    name = "jobs",
    requires = ["bionty_import"]
);
extension_sql_file!(
    "../../sql/19_upload.sql",
    name = "upload",
    requires = ["jobs"]
);
extension_sql_file!(
    "../../sql/20_storage_jobs.sql",
    name = "storage_jobs",
    requires = ["upload"]
);
extension_sql_file!(
    "../../sql/21_access.sql",
    name = "access",
    requires = ["storage_jobs"]
);
extension_sql_file!(
    "../../sql/22_tables.sql",
    name = "tables",
    requires = ["access"]
);
extension_sql_file!(
    "../../sql/23_query_views.sql",
    name = "query_views",
    requires = ["tables"]
);
extension_sql_file!(
    "../../sql/24_feature_values.sql",
    name = "feature_values",
    requires = ["query_views"]
);
extension_sql_file!(
    "../../sql/25_validation.sql",
    name = "validation",
    requires = ["feature_values"]
);
extension_sql_file!(
    "../../sql/26_find.sql",
    name = "find",
    requires = ["validation"]
);
extension_sql_file!(
    "../../sql/27_records.sql",
    name = "records",
    requires = ["find"]
);
extension_sql_file!(
    "../../sql/28_record_links.sql",
    name = "record_links",
    requires = ["records"]
);
extension_sql_file!(
    "../../sql/29_sheets.sql",
    name = "sheets",
    requires = ["record_links"]
);
extension_sql_file!(
    "../../sql/30_own_registries.sql",
    name = "own_registries",
    requires = ["sheets"]
);
extension_sql_file!(
    "../../sql/31_instances.sql",
    name = "instances",
    requires = ["own_registries"]
);
extension_sql_file!(
    "../../sql/32_transfer.sql",
    name = "transfer",
    requires = ["instances", admit_uid]
);
extension_sql_file!(
    "../../sql/33_lamindb.sql",
    name = "lamindb",
    requires = ["transfer"]
);
extension_sql_file!(
    "../../sql/34_job_retention.sql",
    name = "job_retention",
    requires = ["lamindb"]
);
extension_sql_file!(
    "../../sql/35_save_artifacts.sql",
    name = "save_artifacts",
    requires = ["job_retention"],
    finalize
);
