//! LaminDB's own hash of an imported artifact (its legacy hash), checked
//! against the bytes while the register job computes their sha256: the md5
//! of a file of up to 50 MiB, or, above that, the sha1 of the sha1s of its
//! first and last 50 MiB (lamindb_setup's `hash_file`; base64url, 22
//! characters). A mismatch means the bytes changed after LaminDB saved
//! them — LaminDB itself never looks again. Folders (md5-d) and multipart
//! md5s (md5-n) are hashed, not checked.

use base64::Engine;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use sha1::Sha1;

use lamin_core::content::{Content, Sha256Stream};

use crate::progress::Progress;
use crate::refused;
use crate::storage::Storage;

/// LaminDB's chunk: files up to it get an md5, larger ones sha1-fl.
pub const CHUNK: u64 = 50 * 1024 * 1024;

/// Whether a legacy hash type is one this module checks.
pub fn checkable(hash_type: &str) -> bool {
    matches!(hash_type, "md5" | "sha1-fl")
}

/// LaminDB's text form of a digest: base64url without padding, 22 characters.
pub fn text(digest: &[u8]) -> String {
    let mut s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    s.truncate(22);
    s
}

/// The legacy hash as it is computed while the bytes stream by.
enum Running {
    Md5(Md5),
    /// sha1 of the first CHUNK bytes (the last CHUNK are read afterwards).
    FirstLast {
        first: Sha1,
        seen: u64,
    },
}

impl Running {
    fn update(&mut self, chunk: &[u8]) {
        match self {
            Running::Md5(h) => h.update(chunk),
            Running::FirstLast { first, seen } => {
                let take = (CHUNK.saturating_sub(*seen) as usize).min(chunk.len());
                first.update(&chunk[..take]);
                *seen += take as u64;
            }
        }
    }
}

/// Stream one object, computing its sha256 and LaminDB's hash of it; the
/// content, or a refusal naming both hashes when LaminDB's does not match.
pub async fn hash_and_check(
    storage: &Storage,
    key: &str,
    legacy_hash: &str,
    legacy_type: &str,
    progress: &dyn Progress,
) -> anyhow::Result<Content> {
    let path = storage.path(key);
    let mut running = match legacy_type {
        "md5" => Running::Md5(Md5::new()),
        "sha1-fl" => Running::FirstLast {
            first: Sha1::new(),
            seen: 0,
        },
        other => return Err(refused!("LaminDB hash type {other} is not checked here")),
    };
    let mut stream = storage.store().get(&path).await?.into_stream();
    let mut sha256 = Sha256Stream::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        sha256.update(&chunk);
        running.update(&chunk);
        progress.add(chunk.len() as u64);
    }
    let (hash, size) = sha256.finish();
    let found = match running {
        Running::Md5(h) => text(&h.finalize()),
        Running::FirstLast { first, .. } => {
            let start = size.saturating_sub(CHUNK);
            let last = storage.store().get_range(&path, start..size).await?;
            let mut outer = Sha1::new();
            outer.update(first.finalize());
            outer.update(Sha1::digest(&last));
            text(&outer.finalize())
        }
    };
    if found != legacy_hash {
        return Err(refused!(
            "the bytes at {} are not those LaminDB saved: its {legacy_type} was {legacy_hash}, theirs is {found} (changed after LaminDB saved them)",
            storage.uri(key)
        ));
    }
    Ok(Content {
        hash,
        size,
        n_files: None,
    })
}

#[cfg(test)]
mod tests {
    use super::{text, Md5};
    use md5::Digest;

    /// A file just over LaminDB's chunk: sha1 of the sha1s of its first and
    /// last 50 MiB (the expected text computed with Python's hashlib as
    /// lamindb_setup does), read through a local storage.
    #[tokio::test]
    async fn a_large_file_is_checked_by_its_first_and_last_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let size = super::CHUNK as usize + 1000;
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("big.bin"), &bytes).unwrap();
        let storage = crate::storage::Storage::open(dir.path().to_str().unwrap()).unwrap();
        let silent = crate::progress::Silent;
        let content = super::hash_and_check(
            &storage,
            "big.bin",
            "88USQPGePFFzit-QqB1AjS",
            "sha1-fl",
            &silent,
        )
        .await
        .unwrap();
        assert_eq!(content.size, size as u64);
        assert_eq!(content.hash, lamin_core::content::sha256_hex(&bytes));
        let err = super::hash_and_check(
            &storage,
            "big.bin",
            "AAAAAAAAAAAAAAAAAAAAAA",
            "sha1-fl",
            &silent,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("not those LaminDB saved"), "{err}");
    }

    #[test]
    fn lamindb_writes_an_md5_in_base64url_without_padding() {
        // lamindb_setup.core.hashing.hash_file of b"lab notes\n" (the fixture's raw/notes.txt).
        assert_eq!(text(&Md5::digest(b"lab notes\n")), "ZXwVVmfBrIHPZTwDkJCPxA");
    }
}
