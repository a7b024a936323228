//! Content identity of artifacts: the streaming sha256 of a file, and the
//! hash of a folder.
//!
//! A file's hash is the sha256 of its bytes (hex). A folder's hash is the
//! sha256 of its manifest: one line per file, `{sha256 hex}  {relative path}\n`,
//! sorted by path (byte order) — the output format of `sha256sum`, so anyone
//! can recompute it:
//!
//! ```text
//! cd DIR && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum
//! ```
//!
//! (sha256sum escapes names holding a backslash or a newline; the manifest
//! keeps them as they are.) LaminDB hashes only the sorted file hashes; including the paths means a
//! renamed file inside a folder is a different folder, as it is to any reader.

use std::io::Read;

use sha2::{Digest, Sha256};

/// What is stored: the sha256 (of the file, or of the folder's manifest),
/// the total size and, for folders, the number of files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub hash: String,
    pub size: u64,
    pub n_files: Option<i64>,
}

/// sha256 and size of a byte stream, fed chunk by chunk (every reader and
/// writer of artifact bytes hashes through this).
#[derive(Debug, Clone, Default)]
pub struct Sha256Stream {
    hasher: Sha256,
    size: u64,
}

impl Sha256Stream {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
    }

    /// The bytes seen so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The sha256 (hex) and size of everything fed.
    pub fn finish(self) -> (String, u64) {
        (format!("{:x}", self.hasher.finalize()), self.size)
    }
}

/// The sha256 (hex) of a byte string.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// How much is read at once when hashing a stream.
pub const HASH_CHUNK: usize = 1 << 20;

/// sha256 (hex) and size of everything `reader` yields; `on_bytes` hears of each chunk.
pub fn hash_reader(
    mut reader: impl Read,
    mut on_bytes: impl FnMut(u64),
) -> std::io::Result<(String, u64)> {
    let mut stream = Sha256Stream::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        stream.update(&buf[..n]);
        on_bytes(n as u64);
    }
    Ok(stream.finish())
}

/// One file of a folder: its path relative to the folder (with `/`), sha256 (hex) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

/// The manifest text of a folder (see the module docs); sorts `files` by path.
pub fn manifest(files: &mut [FileHash]) -> String {
    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    let mut out = String::with_capacity(files.len() * 100);
    for f in files.iter() {
        out.push_str(&f.sha256);
        out.push_str("  ");
        out.push_str(&f.path);
        out.push('\n');
    }
    out
}

/// The hash of a folder: sha256 (hex) of its manifest.
pub fn folder_hash(files: &mut [FileHash]) -> String {
    sha256_hex(manifest(files).as_bytes())
}

/// The content of a folder from its files: manifest hash, total size, file count.
pub fn folder_content(files: &mut [FileHash]) -> Content {
    Content {
        hash: folder_hash(files),
        size: files.iter().map(|f| f.size).sum(),
        n_files: Some(files.len() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, content: &[u8]) -> FileHash {
        FileHash {
            path: path.to_string(),
            sha256: format!("{:x}", Sha256::digest(content)),
            size: content.len() as u64,
        }
    }

    #[test]
    fn streams_hash_like_one_digest() {
        let data = b"hello\nworld\n".repeat(200_000);
        let mut seen = 0;
        let (h, n) = hash_reader(&data[..], |k| seen += k).unwrap();
        assert_eq!((n as usize, seen as usize), (data.len(), data.len()));
        assert_eq!(h, sha256_hex(&data));
        let mut s = Sha256Stream::new();
        for chunk in data.chunks(7777) {
            s.update(chunk);
        }
        assert_eq!(s.finish(), (h, n));
    }

    #[test]
    fn folder_content_counts_files_and_bytes() {
        let c = folder_content(&mut [f("b", b"22"), f("a", b"1")]);
        assert_eq!((c.size, c.n_files), (3, Some(2)));
        assert_eq!(c.hash, folder_hash(&mut [f("a", b"1"), f("b", b"22")]));
    }

    #[test]
    fn manifest_is_sha256sum_output_sorted_by_path() {
        let mut files = vec![f("b/x.txt", b"x"), f("a.txt", b"a"), f("B.txt", b"B")];
        let m = manifest(&mut files);
        let paths: Vec<&str> = m.lines().map(|l| &l[66..]).collect();
        assert_eq!(paths, ["B.txt", "a.txt", "b/x.txt"]);
        assert!(m.starts_with(&format!("{:x}  B.txt\n", Sha256::digest(b"B"))));
    }

    #[test]
    fn order_of_discovery_does_not_matter_but_names_do() {
        let one = folder_hash(&mut [f("a", b"1"), f("b", b"2")]);
        let two = folder_hash(&mut [f("b", b"2"), f("a", b"1")]);
        assert_eq!(one, two);
        let renamed = folder_hash(&mut [f("a", b"1"), f("c", b"2")]);
        assert_ne!(one, renamed);
    }

    #[test]
    fn matches_the_shell_recipe() {
        // printf 'hello\n' > a; printf 'x' > 'sub/b c'; the recipe from the module docs
        // gives this hash (computed with coreutils sha256sum).
        let mut files = vec![f("sub/b c", b"x"), f("a", b"hello\n")];
        let expected_manifest =
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  a\n\
             2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881  sub/b c\n";
        assert_eq!(manifest(&mut files), expected_manifest);
        assert_eq!(
            folder_hash(&mut files),
            "d72288ff590dfd9defd4dc12bf84b9e2a9cb3c85a272a54b3b0e7f717935cb50"
        );
    }
}
