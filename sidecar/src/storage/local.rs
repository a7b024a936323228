//! Local files and folders: listing a folder to save, hashing and copying
//! local files, the cache layout for copies of remote artifacts.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context};
use lamin_core::content::{folder_content, hash_reader, Content, FileHash};

use crate::progress::Progress;

/// Remove a file or folder if it is there.
pub fn remove_path(path: &Path) {
    let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir_all(path));
}

/// Where the sidecar's cache keeps an artifact of a remote storage:
/// `{cache}/{scheme}/{bucket}/{prefix}/{object key}`, e.g.
/// `~/.cache/lamin/s3/my-bucket/project/.lamindb/{uid}.parquet`.
pub fn cache_path(cache_dir: &Path, root: &str, object_key: &str) -> anyhow::Result<PathBuf> {
    let (scheme, rest) = root
        .split_once("://")
        .with_context(|| format!("storage {root} is local: it needs no cache"))?;
    let mut path = cache_dir.join(scheme);
    for part in rest.split('/').chain(object_key.split('/')) {
        if part.is_empty() {
            continue;
        }
        if part == "." || part == ".." {
            bail!("refusing the cache path of {root}/{object_key}: it has . or .. parts");
        }
        path.push(part);
    }
    Ok(path)
}

/// A local folder's files as (relative path with `/`, full path), sorted;
/// symbolic links are refused so that a save never reaches outside the folder.
pub fn local_folder_files(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let kind = entry.file_type();
        if kind.is_symlink() {
            bail!(
                "{} is a symbolic link: folders with links cannot be saved (copy the target in instead)",
                entry.path().display()
            );
        }
        if !kind.is_file() {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(dir)
            .expect("walkdir yields paths under its root");
        let parts: Option<Vec<&str>> = relative
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect();
        let Some(parts) = parts else {
            bail!("{}: file names must be UTF-8", entry.path().display());
        };
        files.push((parts.join("/"), entry.path().to_path_buf()));
    }
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    if files.is_empty() {
        bail!(
            "{} holds no files: an empty folder is not an artifact",
            dir.display()
        );
    }
    Ok(files)
}

/// The content of a local file or folder (files hashed one after another);
/// `progress` hears of every byte.
pub fn hash_local(path: &Path, progress: &dyn Progress) -> anyhow::Result<Content> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_dir() {
        let (hash, size) = hash_file(path, progress)?;
        return Ok(Content {
            hash,
            size,
            n_files: None,
        });
    }
    hash_files(&local_folder_files(path)?, progress)
}

/// The content of a folder given as its files (relative path, full path).
pub fn hash_files(files: &[(String, PathBuf)], progress: &dyn Progress) -> anyhow::Result<Content> {
    let mut hashes = Vec::with_capacity(files.len());
    for (relative, full) in files {
        let (sha256, size) = hash_file(full, progress)?;
        hashes.push(FileHash {
            path: relative.clone(),
            sha256,
            size,
        });
    }
    Ok(folder_content(&mut hashes))
}

/// sha256 (hex) and size of one local file.
pub fn hash_file(path: &Path, progress: &dyn Progress) -> anyhow::Result<(String, u64)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    hash_reader(file, |n| progress.add(n))
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Local file to local file: the kernel copies (`std::io::copy` uses
/// copy_file_range) while another thread hashes the source, so the hash
/// costs no extra time. The source must not change meanwhile: its size and
/// modification time are compared before and after.
pub fn hash_and_copy_file(
    source: &Path,
    dest: &mut std::fs::File,
    flush: bool,
    progress: &dyn Progress,
) -> anyhow::Result<(String, u64)> {
    let stamp = |p: &Path| -> anyhow::Result<(u64, SystemTime)> {
        let m = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        Ok((m.len(), m.modified().context("no modification time")?))
    };
    let before = stamp(source)?;
    let (hashed, copied) = std::thread::scope(|scope| {
        let hasher = scope.spawn(|| hash_file(source, progress));
        let copier = (|| -> anyhow::Result<u64> {
            let mut input = std::fs::File::open(source)
                .with_context(|| format!("cannot open {}", source.display()))?;
            let n = std::io::copy(&mut input, dest).context("copying the bytes failed")?;
            if flush {
                dest.sync_all().context("flushing the copy failed")?;
            }
            Ok(n)
        })();
        (hasher.join().expect("hashing thread"), copier)
    });
    let (hash, size) = hashed?;
    let copied = copied?;
    if copied != size || stamp(source)? != before {
        bail!("{} changed while it was being copied", source.display());
    }
    Ok((hash, size))
}

/// The newest modification time under a local path.
pub fn newest_mtime(path: &Path) -> SystemTime {
    walkdir::WalkDir::new(path)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;
    use sha2::{Digest, Sha256};
    use std::io::{Read, Seek};

    #[test]
    fn kernel_copy_with_a_side_hash_matches_a_plain_hash() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let mut dest = tempfile::tempfile_in(dir.path()).unwrap();
        let (h, n) = hash_and_copy_file(&src, &mut dest, true, &Silent).unwrap();
        assert_eq!(n as usize, data.len());
        assert_eq!(h, format!("{:x}", Sha256::digest(&data)));
        let mut back = Vec::new();
        dest.rewind().unwrap();
        dest.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn local_files_and_folders_hash_like_the_manifest_recipe() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/sub")).unwrap();
        std::fs::write(dir.path().join("d/a"), "hello\n").unwrap();
        std::fs::write(dir.path().join("d/sub/b c"), "x").unwrap();
        let folder = hash_local(&dir.path().join("d"), &Silent).unwrap();
        assert_eq!(
            folder.hash,
            "d72288ff590dfd9defd4dc12bf84b9e2a9cb3c85a272a54b3b0e7f717935cb50"
        );
        assert_eq!((folder.size, folder.n_files), (7, Some(2)));
        let file = hash_local(&dir.path().join("d/a"), &Silent).unwrap();
        assert_eq!((file.size, file.n_files), (6, None));
    }
}
