//! Where lamin keeps an artifact's bytes inside its storage root.
//!
//! Saved artifacts live at `.lamindb/{uid}{suffix}` (LaminDB's layout: the
//! key is a name, the object is named by the uid); registered objects keep
//! their key as their path. The database's `lamin.object_key(artifact)` says
//! the same for rows; this module is the rule for Rust code.

/// The folder under a storage root that lamin manages.
pub const OBJECT_DIR: &str = ".lamindb";

/// Length of an artifact uid (16-character stem + 4-character version).
pub const ARTIFACT_UID_LEN: usize = 20;

/// The object path of a saved artifact within its root: `.lamindb/{uid}{suffix}`.
pub fn object_key(uid: &str, suffix: &str) -> String {
    format!("{OBJECT_DIR}/{uid}{suffix}")
}

/// The path of one entry directly under `.lamindb/` (an object or a leftover).
pub fn object_dir_entry(name: &str) -> String {
    format!("{OBJECT_DIR}/{name}")
}

/// The artifact uid a name directly under `.lamindb/` belongs to
/// (`{uid}{suffix}`, the suffix empty or starting with a dot), if any.
pub fn uid_of_object_name(name: &str) -> Option<&str> {
    let uid = name.get(..ARTIFACT_UID_LEN)?;
    let rest = &name[ARTIFACT_UID_LEN..];
    (uid.bytes().all(|b| b.is_ascii_alphanumeric()) && (rest.is_empty() || rest.starts_with('.')))
        .then_some(uid)
}

/// Whether `object` is the object of artifact `uid`: `.lamindb/{uid}{suffix}`,
/// one name, nothing below or beside it.
pub fn is_object_of(object: &str, uid: &str) -> bool {
    object
        .strip_prefix(OBJECT_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|name| !name.contains('/') && !name.contains('\\'))
        .and_then(uid_of_object_name)
        == Some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_named_by_uid_and_suffix() {
        assert_eq!(
            object_key("abcdefghij0123456789", ".parquet"),
            ".lamindb/abcdefghij0123456789.parquet"
        );
        assert_eq!(
            object_key("abcdefghij0123456789", ""),
            ".lamindb/abcdefghij0123456789"
        );
        assert_eq!(object_dir_entry(".lamin-save-x"), ".lamindb/.lamin-save-x");
    }

    #[test]
    fn only_the_uids_own_object_is_its_object() {
        let uid = "abcdefghij0123456789";
        assert!(is_object_of(&object_key(uid, ".parquet"), uid));
        assert!(is_object_of(&object_key(uid, ""), uid));
        assert!(!is_object_of(".lamindb/abcdefghij0123456789.zarr/x", uid));
        assert!(!is_object_of(".lamindb/zzzzzzzzzz0123456789.parquet", uid));
        assert!(!is_object_of(
            ".lamindb/abcdefghij0123456789/../../etc",
            uid
        ));
        assert!(!is_object_of(".lamindb", uid));
        assert!(!is_object_of(".lamindbx/abcdefghij0123456789", uid));
        assert!(!is_object_of("data/abcdefghij0123456789.parquet", uid));
    }

    #[test]
    fn object_names_give_their_uid() {
        assert_eq!(
            uid_of_object_name("abcdefghij0123456789.parquet"),
            Some("abcdefghij0123456789")
        );
        assert_eq!(
            uid_of_object_name("abcdefghij0123456789"),
            Some("abcdefghij0123456789")
        );
        assert_eq!(uid_of_object_name(".lamin-save-abc"), None);
        assert_eq!(uid_of_object_name("abcdefghij0123456789x"), None);
        assert_eq!(uid_of_object_name("short.txt"), None);
    }
}
