//! Validation of artifact keys (paths relative to a storage root).

use thiserror::Error;

/// The longest key accepted, in bytes (LaminDB's limit).
pub const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("key is empty")]
    Empty,
    #[error("key is {0} bytes long; the limit is {MAX_KEY_BYTES} bytes")]
    TooLong(usize),
    #[error("key contains a NUL byte")]
    Nul,
    #[error("key contains a backslash; use '/' to separate folders")]
    Backslash,
    #[error("key starts with '/'; keys are relative to the storage root")]
    Absolute,
    #[error("key has a '{0}' path segment; '.' and '..' are not allowed")]
    DotSegment(String),
    #[error("key has an empty path segment ('//' or a trailing '/')")]
    EmptySegment,
    #[error("key contains the control or direction character U+{0:04X}; keys are printable text")]
    ControlChar(u32),
    #[error("key has a leading or trailing blank in a path segment")]
    Blank,
}

/// Characters a key must not hold: control characters (newline, tab, DEL,
/// U+0085, …), line and paragraph separators, and the bidirectional
/// formatting characters that make a name display as another (U+202E).
fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{FEFF}'
        )
        || ('\u{202A}'..='\u{202E}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Check a key against the rules every storage backend can honour safely.
/// Keys are `&str`, so they are valid UTF-8 by construction.
pub fn validate_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong(key.len()));
    }
    if key.contains('\0') {
        return Err(KeyError::Nul);
    }
    if let Some(c) = key.chars().find(|c| is_forbidden_char(*c)) {
        return Err(KeyError::ControlChar(c as u32));
    }
    if key.contains('\\') {
        return Err(KeyError::Backslash);
    }
    if key.starts_with('/') {
        return Err(KeyError::Absolute);
    }
    for segment in key.split('/') {
        match segment {
            "" => return Err(KeyError::EmptySegment),
            "." | ".." => return Err(KeyError::DotSegment(segment.to_string())),
            s if s.trim() != s => return Err(KeyError::Blank),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_control_direction_and_blank_characters() {
        for (key, code) in [
            ("a\nb", 0x0A),
            ("a\tb", 0x09),
            ("a\u{7f}b", 0x7F),
            ("a\u{85}b", 0x85),
            ("a\u{2028}b", 0x2028),
            ("report\u{202E}fdp.exe", 0x202E),
        ] {
            assert_eq!(
                validate_key(key),
                Err(KeyError::ControlChar(code)),
                "{key:?}"
            );
        }
        for key in [" a.txt", "a.txt ", "dir /a.txt", "dir/ a.txt"] {
            assert_eq!(validate_key(key), Err(KeyError::Blank), "{key:?}");
        }
        assert_eq!(validate_key("a b/c d.txt"), Ok(()));
    }

    #[test]
    fn accepts_ordinary_keys() {
        for key in [
            "a.parquet",
            "folder/sub/file.h5ad",
            "..hidden/x",
            "x/.y",
            "ünïcode/ß.csv",
        ] {
            assert_eq!(validate_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn rejects_each_rule() {
        assert_eq!(validate_key(""), Err(KeyError::Empty));
        assert_eq!(
            validate_key(&"a".repeat(1025)),
            Err(KeyError::TooLong(1025))
        );
        assert_eq!(validate_key(&"a".repeat(1024)), Ok(()));
        assert_eq!(validate_key("a\0b"), Err(KeyError::Nul));
        assert_eq!(validate_key("a\\b"), Err(KeyError::Backslash));
        assert_eq!(validate_key("/etc/passwd"), Err(KeyError::Absolute));
        assert_eq!(
            validate_key("a/../b"),
            Err(KeyError::DotSegment("..".into()))
        );
        assert_eq!(validate_key("./b"), Err(KeyError::DotSegment(".".into())));
        assert_eq!(validate_key("a//b"), Err(KeyError::EmptySegment));
        assert_eq!(validate_key("a/"), Err(KeyError::EmptySegment));
    }

    #[test]
    fn errors_name_the_rule() {
        let msg = validate_key("a/../b").unwrap_err().to_string();
        assert!(msg.contains("'..'"), "{msg}");
    }
}

/// Compound suffixes kept whole (`x.ome.zarr` has suffix `.ome.zarr`, not `.zarr`).
const COMPOUND_SUFFIXES: &[&str] = &[
    ".anndata.zarr",
    ".ome.zarr",
    ".ome.tiff",
    ".ome.tif",
    ".tar.gz",
    ".tar.bz2",
    ".tar.zst",
    ".csv.gz",
    ".tsv.gz",
    ".json.gz",
    ".fastq.gz",
    ".fq.gz",
    ".vcf.gz",
    ".bed.gz",
    ".gtf.gz",
    ".gff.gz",
    ".mtx.gz",
    ".txt.gz",
];

/// The file suffix of a key's last segment, including the dot: `a/b.parquet` →
/// `.parquet`, `x.tar.gz` → `.tar.gz`, `README` → ``, `.bashrc` → ``.
pub fn suffix_from_key(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    let lower = name.to_ascii_lowercase();
    for compound in COMPOUND_SUFFIXES {
        if lower.len() > compound.len() && lower.ends_with(compound) {
            return name[name.len() - compound.len()..].to_string();
        }
    }
    match name.rfind('.') {
        Some(0) | None => String::new(),
        Some(dot) => {
            let ext = &name[dot + 1..];
            let ok = !ext.is_empty()
                && ext
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if ok {
                name[dot..].to_string()
            } else {
                String::new()
            }
        }
    }
}

#[cfg(test)]
mod suffix_tests {
    use super::suffix_from_key;

    #[test]
    fn suffixes() {
        assert_eq!(suffix_from_key("data/cells.parquet"), ".parquet");
        assert_eq!(suffix_from_key("x.tar.gz"), ".tar.gz");
        assert_eq!(suffix_from_key("img/scan.OME.ZARR"), ".OME.ZARR");
        assert_eq!(suffix_from_key("README"), "");
        assert_eq!(suffix_from_key(".bashrc"), "");
        assert_eq!(suffix_from_key("dir.v2/file"), "");
        assert_eq!(suffix_from_key("weird.na me"), "");
        assert_eq!(suffix_from_key("trailingdot."), "");
    }

    /// The rule `lamin save` and the database share (LaminDB's: a known
    /// compound suffix whole, else the last one), whatever dots the stem has.
    #[test]
    fn dotted_stems_keep_only_the_last_suffix() {
        assert_eq!(suffix_from_key("cells.v2.parquet"), ".parquet");
        assert_eq!(suffix_from_key("my.data.csv"), ".csv");
        assert_eq!(suffix_from_key("raw/run.2024-01-01.tsv"), ".tsv");
        assert_eq!(suffix_from_key("a.b.c.d.h5ad"), ".h5ad");
    }

    #[test]
    fn compound_suffixes_stay_whole() {
        assert_eq!(suffix_from_key("reads.fastq.gz"), ".fastq.gz");
        assert_eq!(suffix_from_key("my.table.csv.gz"), ".csv.gz");
        assert_eq!(suffix_from_key("pbmc.anndata.zarr"), ".anndata.zarr");
        assert_eq!(suffix_from_key("archive.v1.tar.gz"), ".tar.gz");
        assert_eq!(suffix_from_key("notes.txt.bak"), ".bak");
        // A name that is only a compound suffix has a stem of its own.
        assert_eq!(suffix_from_key(".tar.gz"), ".gz");
    }

    #[test]
    fn hidden_files_and_names_without_suffix() {
        assert_eq!(suffix_from_key(".hidden"), "");
        assert_eq!(suffix_from_key("dir/.hidden.csv"), ".csv");
        assert_eq!(suffix_from_key("Makefile"), "");
        assert_eq!(suffix_from_key(".config/settings"), "");
        assert_eq!(suffix_from_key("v1.0/data"), "");
    }
}
