//! Content identity of folder artifacts.
//!
//! A folder's hash is the sha256 of its manifest: one line per file,
//! `{sha256 hex}  {relative path}\n`, sorted by path (byte order) — the
//! output format of `sha256sum`, so anyone can recompute it:
//!
//! ```text
//! cd DIR && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum
//! ```
//!
//! (sha256sum escapes names holding a backslash or a newline; the manifest
//! keeps them as they are.) LaminDB hashes only the sorted file hashes; including the paths means a
//! renamed file inside a folder is a different folder, as it is to any reader.

use sha2::{Digest, Sha256};

/// One file of a folder: its path relative to the folder (with `/`) and sha256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    pub path: String,
    pub sha256: String,
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
    format!("{:x}", Sha256::digest(manifest(files).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, content: &[u8]) -> FileHash {
        FileHash {
            path: path.to_string(),
            sha256: format!("{:x}", Sha256::digest(content)),
        }
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
