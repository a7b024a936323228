//! Parsing of storage roots: `/abs/path`, `s3://bucket/prefix`, `gs://…`, `az://…`.

use thiserror::Error;

/// Where a storage root's objects live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    Local,
    S3,
    Gcs,
    Azure,
}

impl StorageType {
    /// The name stored in `lamin.storage.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageType::Local => "local",
            StorageType::S3 => "s3",
            StorageType::Gcs => "gs",
            StorageType::Azure => "az",
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RootError {
    #[error("storage root is empty")]
    Empty,
    #[error("storage root {0:?} contains a NUL byte or a backslash")]
    BadCharacter(String),
    #[error(
        "storage root {0:?} is neither an absolute local path nor an s3://, gs:// or az:// URI"
    )]
    UnknownScheme(String),
    #[error("storage root {0:?} has no bucket or container name")]
    NoBucket(String),
    #[error("storage root {0:?} has a '.' or '..' segment")]
    DotSegment(String),
}

/// A validated, normalised storage root (no trailing slash, no empty segments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRoot {
    pub kind: StorageType,
    /// The normalised root, e.g. `s3://bucket/prefix` or `/data/lamin`.
    pub root: String,
}

/// Parse and normalise a storage root.
pub fn parse_root(input: &str) -> Result<StorageRoot, RootError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(RootError::Empty);
    }
    if trimmed.contains('\0') || trimmed.contains('\\') {
        return Err(RootError::BadCharacter(input.to_string()));
    }
    let (kind, scheme, rest) = if let Some(rest) = trimmed.strip_prefix("s3://") {
        (StorageType::S3, "s3://", rest)
    } else if let Some(rest) = trimmed.strip_prefix("gs://") {
        (StorageType::Gcs, "gs://", rest)
    } else if let Some(rest) = trimmed.strip_prefix("az://") {
        (StorageType::Azure, "az://", rest)
    } else if let Some(rest) = trimmed.strip_prefix('/') {
        (StorageType::Local, "/", rest)
    } else {
        return Err(RootError::UnknownScheme(input.to_string()));
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err(RootError::DotSegment(input.to_string()));
    }
    if kind != StorageType::Local && segments.is_empty() {
        return Err(RootError::NoBucket(input.to_string()));
    }
    Ok(StorageRoot {
        kind,
        root: format!("{scheme}{}", segments.join("/")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_each_kind() {
        let cases = [
            ("/data/lamin/", StorageType::Local, "/data/lamin"),
            (
                "s3://bucket//prefix/",
                StorageType::S3,
                "s3://bucket/prefix",
            ),
            ("gs://bucket", StorageType::Gcs, "gs://bucket"),
            ("az://container/p", StorageType::Azure, "az://container/p"),
        ];
        for (input, kind, root) in cases {
            assert_eq!(
                parse_root(input),
                Ok(StorageRoot {
                    kind,
                    root: root.to_string()
                }),
                "{input}"
            );
        }
    }

    #[test]
    fn rejects_bad_roots() {
        assert_eq!(parse_root(" "), Err(RootError::Empty));
        assert!(matches!(
            parse_root("relative/path"),
            Err(RootError::UnknownScheme(_))
        ));
        assert!(matches!(
            parse_root("http://x"),
            Err(RootError::UnknownScheme(_))
        ));
        assert!(matches!(parse_root("s3://"), Err(RootError::NoBucket(_))));
        assert!(matches!(
            parse_root("/data/../etc"),
            Err(RootError::DotSegment(_))
        ));
        assert!(matches!(
            parse_root("/a\\b"),
            Err(RootError::BadCharacter(_))
        ));
    }
}
