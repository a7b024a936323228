//! `lamin save` and `lamin get`: moving an artifact's bytes between the
//! client's disk and a storage root, with the full-content sha256 checked on
//! both ways. This slice handles local storage roots; S3, GCS and Azure come
//! with the object_store backends.
//!
//! Save: hash the file (pass 1) → lamin.begin_upload registers it by content
//! (known content: nothing is uploaded) → copy it to
//! {root}/.lamindb/{uid}{suffix} through a temporary file, hashing again
//! (pass 2) → rename into place → lamin.finish_upload marks it ready only if
//! both hashes agree. The object never exists half-written under its name,
//! and a crash leaves the artifact 'pending', never 'ready' without bytes.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::cli::DbArgs;

#[derive(Debug, Args)]
pub struct SaveArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The file to save.
    pub file: PathBuf,
    /// Key (path within the storage, e.g. raw/cells.parquet); a key that names
    /// an artifact already makes a new version of it.
    #[arg(long)]
    pub key: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Storage root or uid (default: the default storage).
    #[arg(long)]
    pub storage: Option<String>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Artifact uid (20 characters) or stem (16: the latest version).
    pub uid: String,
    /// Where to write the file (default: the key's file name, else uid + suffix, in the current folder).
    #[arg(long)]
    pub to: Option<PathBuf>,
    #[arg(long, short)]
    pub quiet: bool,
}

const CHUNK: usize = 1 << 20;

fn progress(total: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// sha256 (hex) and size of everything `reader` yields, optionally copied to `sink`.
fn hash_copy(
    mut reader: impl Read,
    mut sink: Option<&mut dyn Write>,
    pb: &ProgressBar,
) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(w) = sink.as_mut() {
            w.write_all(&buf[..n])?;
        }
        size += n as u64;
        pb.inc(n as u64);
    }
    Ok((format!("{:x}", hasher.finalize()), size))
}

/// The file's suffix as lamin stores it (`.tar.gz` style, letters/digits only), or None.
fn suffix_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let (_, rest) = name.split_once('.')?;
    let suffix = format!(".{rest}");
    let ok = suffix.len() <= 40
        && suffix.split('.').skip(1).all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    ok.then_some(suffix)
}

fn local_root(storage_type: &str, root: &str) -> anyhow::Result<PathBuf> {
    if storage_type != "local" {
        bail!("storage {root} is of type {storage_type}: this sidecar moves bytes for local storage roots only so far");
    }
    Ok(PathBuf::from(root))
}

pub async fn save(args: SaveArgs) -> anyhow::Result<()> {
    let path = args.file.clone();
    let meta =
        std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        bail!(
            "{} is a folder: folder artifacts are not supported by lamin save yet",
            path.display()
        );
    }
    // Pass 1: the content hash decides whether anything needs uploading.
    let pb = progress(meta.len(), args.quiet, "hashing");
    let file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let (hash, size) = tokio::task::block_in_place(|| hash_copy(file, None, &pb))
        .with_context(|| format!("cannot read {}", path.display()))?;
    pb.finish_and_clear();

    let client = crate::db::connect(&args.db.database_url).await?;
    let suffix = suffix_of(args.key.as_deref().map(Path::new).unwrap_or(&path));
    let row = client
        .query_one(
            "SELECT uid, upload, status, path, storage_root, storage_type FROM lamin.begin_upload($1, $2, $3, $4, $5, $6)",
            &[&hash, &(size as i64), &args.key, &suffix, &args.description, &args.storage],
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.as_db_error().map(|d| d.message().to_string()).unwrap_or(e.to_string())))
        .context("nothing was saved")?;
    let uid: String = row.get(0);
    let upload: bool = row.get(1);
    let status: String = row.get(2);
    let target: String = row.get(3);
    local_root(&row.get::<_, String>(5), &row.get::<_, String>(4))?;
    if !upload {
        if status == "pending" {
            println!("{uid} (same content is being uploaded by another save; the artifact is pending until it finishes)");
        } else {
            println!("{uid} (same content already saved: nothing uploaded)");
        }
        return Ok(());
    }

    // Pass 2: copy through a temporary file in the same folder, then rename.
    let written = tokio::task::block_in_place(|| -> anyhow::Result<String> {
        let target = PathBuf::from(&target);
        let dir = target.parent().context("object path has no folder")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        let pb = progress(size, args.quiet, "saving");
        let source = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let (again, _) =
            hash_copy(source, Some(tmp.as_file_mut()), &pb).context("copying the bytes failed")?;
        pb.finish_and_clear();
        if again != hash {
            bail!(
                "{} changed while it was being saved (sha256 {hash} then {again})",
                path.display()
            );
        }
        tmp.as_file()
            .sync_all()
            .context("flushing the copy failed")?;
        tmp.persist(&target)
            .with_context(|| format!("cannot move the copy to {}", target.display()))?;
        Ok(again)
    });
    match written {
        Ok(h) => {
            client
                .query_one("SELECT lamin.finish_upload($1, $2)", &[&uid, &h])
                .await
                .context("marking the artifact ready failed (it stays pending)")?;
            println!("{uid}");
            Ok(())
        }
        Err(e) => {
            let msg = format!("{e:#}");
            let _ = client
                .execute("SELECT lamin.fail_upload($1, $2)", &[&uid, &msg])
                .await;
            Err(e.context(format!(
                "artifact {uid} is marked failed; saving the file again retries"
            )))
        }
    }
}

pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let client = crate::db::connect(&args.db.database_url).await?;
    let row = client
        .query_one(
            "SELECT a.uid, a.key, a.suffix, a.hash, a.status, a.size, lamin.artifact_path(a), s.root, s.type, a.n_files
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id
             WHERE a.id = lamin.artifact_id($1)",
            &[&args.uid],
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.as_db_error().map(|d| d.message().to_string()).unwrap_or(e.to_string())))?;
    let uid: String = row.get(0);
    let key: Option<String> = row.get(1);
    let suffix: String = row.get(2);
    let hash: Option<String> = row.get(3);
    let status: String = row.get(4);
    let size: Option<i64> = row.get(5);
    let source = PathBuf::from(row.get::<_, String>(6));
    local_root(&row.get::<_, String>(8), &row.get::<_, String>(7))?;
    if row.get::<_, Option<i64>>(9).is_some() {
        bail!("artifact {uid} is a folder: lamin get handles files only so far");
    }
    if status != "ready" {
        bail!("artifact {uid} is {status}: its bytes are not (yet) verified in storage");
    }
    let dest = args.to.clone().unwrap_or_else(|| {
        let name = key
            .as_deref()
            .and_then(|k| Path::new(k).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{uid}{suffix}"));
        PathBuf::from(name)
    });
    let dest = if dest.is_dir() {
        dest.join(format!("{uid}{suffix}"))
    } else {
        dest
    };
    tokio::task::block_in_place(|| -> anyhow::Result<()> {
        let input = std::fs::File::open(&source).with_context(|| {
            format!("artifact {uid}: its object {} is missing", source.display())
        })?;
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        let pb = progress(size.unwrap_or(0) as u64, args.quiet, "getting");
        let (got, _) =
            hash_copy(input, Some(tmp.as_file_mut()), &pb).context("copying the bytes failed")?;
        pb.finish_and_clear();
        if Some(&got) != hash.as_ref() {
            bail!("artifact {uid}: the stored bytes have sha256 {got}, not the registered {} — not written", hash.as_deref().unwrap_or("?"));
        }
        tmp.persist(&dest)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(())
    })?;
    println!("{}", dest.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_follow_lamin_rules() {
        assert_eq!(
            suffix_of(Path::new("a/cells.parquet")).as_deref(),
            Some(".parquet")
        );
        assert_eq!(suffix_of(Path::new("x.tar.gz")).as_deref(), Some(".tar.gz"));
        assert_eq!(suffix_of(Path::new("README")), None);
        assert_eq!(suffix_of(Path::new("weird.na me")), None);
    }

    #[test]
    fn hash_copy_hashes_what_it_copies() {
        let data = b"hello\nworld\n".repeat(100_000);
        let mut out = Vec::new();
        let (h, n) = hash_copy(&data[..], Some(&mut out), &ProgressBar::hidden()).unwrap();
        assert_eq!(n as usize, data.len());
        assert_eq!(out, data);
        assert_eq!(h, format!("{:x}", Sha256::digest(&data)));
    }
}
