//! `lamin save` and `lamin get`: moving an artifact's bytes between the
//! client's disk and a storage root (local disk, S3 and S3-compatible, GCS,
//! Azure, through object_store), with the full-content sha256 checked on both
//! ways.
//!
//! Save: hash the file (pass 1) → lamin.begin_upload registers it by content
//! (known content: nothing is uploaded) → a multipart upload to
//! {root}/.lamindb/{uid}{suffix}, hashing again (pass 2; bounded memory) →
//! lamin.finish_upload marks it ready only if both hashes agree. The object
//! appears under its name only when complete (S3 multipart completion, a
//! rename on local disk), and a crash leaves the artifact 'pending', never
//! 'ready' without bytes.
//!
//! Credentials never live in the database: object_store reads them from the
//! environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION,
//! AWS_ENDPOINT, AWS_ALLOW_HTTP; GOOGLE_SERVICE_ACCOUNT; AZURE_STORAGE_ACCOUNT_NAME,
//! AZURE_STORAGE_ACCOUNT_KEY, …).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};

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

/// sha256 (hex) and size of everything `reader` yields.
fn hash_reader(mut reader: impl Read, pb: &ProgressBar) -> std::io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        pb.inc(n as u64);
    }
    Ok((format!("{:x}", hasher.finalize()), size))
}

/// Local file to local file: the kernel copies (`std::io::copy` uses
/// copy_file_range) while another thread hashes the source, so the hash
/// costs no extra time. The source must not change meanwhile: its size and
/// modification time are compared before and after.
fn hash_and_copy_file(
    source: &Path,
    dest: &mut std::fs::File,
    flush: bool,
    pb: &ProgressBar,
) -> anyhow::Result<(String, u64)> {
    let stamp = |p: &Path| -> anyhow::Result<(u64, std::time::SystemTime)> {
        let m = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        Ok((m.len(), m.modified().context("no modification time")?))
    };
    let before = stamp(source)?;
    let (hashed, copied) = std::thread::scope(|scope| {
        let hasher = scope.spawn(|| -> anyhow::Result<(String, u64)> {
            let input = std::fs::File::open(source)
                .with_context(|| format!("cannot open {}", source.display()))?;
            hash_reader(input, pb).with_context(|| format!("cannot read {}", source.display()))
        });
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

/// The object store of a remote storage root (s3://, gs://, az://) and the
/// path prefix the root names inside it. (Local roots are read and written
/// with plain file operations, which let the kernel copy.)
fn open_store(root: &str) -> anyhow::Result<(Box<dyn ObjectStore>, ObjectPath)> {
    let url = url::Url::parse(root).with_context(|| format!("storage root {root} is not a URL"))?;
    // Configuration (credentials, endpoint, region) from the environment only.
    let options = std::env::vars().filter_map(|(k, v)| {
        let k = k.to_ascii_lowercase();
        (k.starts_with("aws_") || k.starts_with("google_") || k.starts_with("azure_"))
            .then_some((k, v))
    });
    object_store::parse_url_opts(&url, options)
        .with_context(|| format!("cannot open storage {root}"))
}

/// `prefix/name`, with `name` split at its slashes.
fn within(prefix: &ObjectPath, name: &str) -> ObjectPath {
    name.split('/')
        .filter(|p| !p.is_empty())
        .fold(prefix.clone(), |path, part| path.child(part))
}

/// A cheap request that fails fast when the storage is unreachable or refuses us.
async fn check_reachable(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    root: &str,
) -> anyhow::Result<()> {
    match store.head(path).await {
        Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("storage {root} is not usable: {e}")),
    }
}

/// The object path of an artifact within its storage root: .lamindb/{uid}{suffix}.
fn object_name(uid: &str, suffix: &str) -> String {
    format!(".lamindb/{uid}{suffix}")
}

fn db_message(e: tokio_postgres::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or(e.to_string())
    )
}

/// Upload a file as one multipart object while hashing it; returns the sha256.
/// Memory stays at a few chunks whatever the size.
async fn upload(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    file: &Path,
    pb: &ProgressBar,
) -> anyhow::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut input = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("cannot open {}", file.display()))?;
    let upload = store
        .put_multipart(path)
        .await
        .context("cannot start the upload")?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e).with_context(|| format!("cannot read {}", file.display()));
            }
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            return Err(e).context("the upload failed");
        }
        writer.write(&buf[..n]);
        pb.inc(n as u64);
    }
    writer
        .finish()
        .await
        .context("completing the upload failed")?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Multipart part size and how many parts may be in flight: bounded memory.
const UPLOAD_PART: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 4;

/// lamin.begin_upload: the uid to write the bytes for and the suffix the
/// database recorded (the object's name is {uid}{suffix}), or None (after
/// saying so) when the content is already stored or being uploaded by
/// another save.
async fn begin(
    client: &tokio_postgres::Client,
    args: &SaveArgs,
    hash: &str,
    size: u64,
    suffix: &Option<String>,
) -> anyhow::Result<Option<(String, String)>> {
    let row = client
        .query_one(
            "SELECT uid, upload, status, path FROM lamin.begin_upload($1, $2, $3, $4, $5, $6)",
            &[
                &hash,
                &(size as i64),
                &args.key,
                suffix,
                &args.description,
                &args.storage,
            ],
        )
        .await
        .map_err(db_message)
        .context("nothing was saved")?;
    let uid: String = row.get(0);
    if row.get::<_, bool>(1) {
        // The path ends with {uid}{suffix}, the suffix as the database recorded it.
        let path: String = row.get(3);
        let suffix = path
            .rsplit_once(uid.as_str())
            .map(|(_, s)| s.to_string())
            .unwrap_or_default();
        return Ok(Some((uid, suffix)));
    }
    if row.get::<_, String>(2) == "pending" {
        println!("{uid} (same content is being uploaded by another save; the artifact is pending until it finishes)");
    } else {
        println!("{uid} (same content already saved: nothing uploaded)");
    }
    Ok(None)
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
    let client = crate::db::connect(&args.db.database_url).await?;
    let (root, storage_type): (String, String) = {
        let row = client
            .query_one(
                "SELECT s.root, s.type FROM lamin.storage s WHERE s.id = lamin.storage_id($1)",
                &[&args.storage],
            )
            .await
            .map_err(db_message)
            .context("nothing was saved")?;
        (row.get(0), row.get(1))
    };
    if storage_type == "local" {
        return save_local(&args, &client, &root, meta.len()).await;
    }

    // Pass 1: the content hash decides whether anything needs uploading.
    let pb = progress(meta.len(), args.quiet, "hashing");
    let file =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let (hash, size) = tokio::task::block_in_place(|| hash_reader(file, &pb))
        .with_context(|| format!("cannot read {}", path.display()))?;
    pb.finish_and_clear();
    // The storage must answer before anything is registered.
    let (store, prefix) = open_store(&root)?;
    check_reachable(store.as_ref(), &within(&prefix, ".lamindb"), &root)
        .await
        .context("nothing was saved")?;

    let suffix = suffix_of(args.key.as_deref().map(Path::new).unwrap_or(&path));
    let Some((uid, stored_suffix)) = begin(&client, &args, &hash, size, &suffix).await? else {
        return Ok(());
    };

    // Pass 2: upload while hashing again.
    let object = within(&prefix, &object_name(&uid, &stored_suffix));
    let pb = progress(size, args.quiet, "saving");
    let uploaded = upload(store.as_ref(), &object, &path, &pb).await;
    pb.finish_and_clear();
    let outcome = match uploaded {
        Ok(again) if again == hash => Ok(again),
        Ok(again) => {
            let _ = store.delete(&object).await;
            Err(anyhow::anyhow!(
                "{} changed while it was being saved (sha256 {hash} then {again})",
                path.display()
            ))
        }
        Err(e) => Err(e),
    };
    finish(&client, &uid, outcome).await
}

/// The end of an upload: the bytes with hash `written` are in place (ready),
/// or writing them failed (the artifact is marked failed; saving again retries).
async fn finish(
    client: &tokio_postgres::Client,
    uid: &str,
    written: anyhow::Result<String>,
) -> anyhow::Result<()> {
    match written {
        Ok(hash) => {
            client
                .query_one("SELECT lamin.finish_upload($1, $2)", &[&uid, &hash])
                .await
                .map_err(db_message)
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

/// Local storage in one pass: copy into a temporary file next to the
/// object's place while hashing, then register; known content drops the copy,
/// new content is renamed into place (atomic) and flushed before it is marked
/// ready.
async fn save_local(
    args: &SaveArgs,
    client: &tokio_postgres::Client,
    root: &str,
    len: u64,
) -> anyhow::Result<()> {
    let dir = Path::new(root).join(".lamindb");
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "storage {root} is not usable: cannot create {}",
            dir.display()
        )
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".lamin-save-")
        .tempfile_in(&dir)
        .with_context(|| {
            format!(
                "storage {root} is not usable: cannot write in {}",
                dir.display()
            )
        })?;
    let pb = progress(len, args.quiet, "saving");
    let (hash, size) = tokio::task::block_in_place(|| {
        hash_and_copy_file(&args.file, tmp.as_file_mut(), true, &pb)
    })?;
    pb.finish_and_clear();
    let suffix = suffix_of(args.key.as_deref().map(Path::new).unwrap_or(&args.file));
    // Known content: the temporary copy is removed when dropped.
    let Some((uid, stored_suffix)) = begin(client, args, &hash, size, &suffix).await? else {
        return Ok(());
    };
    let target = dir.join(format!("{uid}{stored_suffix}"));
    let written = tmp
        .persist(&target)
        .map(|_| hash)
        .map_err(|e| anyhow::anyhow!("cannot move the copy to {}: {}", target.display(), e.error));
    finish(client, &uid, written).await
}

pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let client = crate::db::connect(&args.db.database_url).await?;
    let row = client
        .query_one(
            "SELECT a.uid, a.key, a.suffix, a.hash, a.status, a.size, s.root, s.type, a.n_files
             FROM lamin.artifact a JOIN lamin.storage s ON s.id = a.storage_id
             WHERE a.id = lamin.artifact_id($1)",
            &[&args.uid],
        )
        .await
        .map_err(db_message)?;
    let uid: String = row.get(0);
    let key: Option<String> = row.get(1);
    let suffix: String = row.get(2);
    let hash: Option<String> = row.get(3);
    let status: String = row.get(4);
    let size: Option<i64> = row.get(5);
    let root: String = row.get(6);
    let storage_type: String = row.get(7);
    if row.get::<_, Option<i64>>(8).is_some() {
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
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let pb = progress(size.unwrap_or(0) as u64, args.quiet, "getting");
    let got = if storage_type == "local" {
        // Local disk: a kernel copy with the hash computed beside it.
        let source = Path::new(&root).join(object_name(&uid, &suffix));
        if !source.is_file() {
            bail!("artifact {uid}: its object {} is missing", source.display());
        }
        tokio::task::block_in_place(|| hash_and_copy_file(&source, tmp.as_file_mut(), false, &pb))?
            .0
    } else {
        let (store, prefix) = open_store(&root)?;
        let object = within(&prefix, &object_name(&uid, &suffix));
        fetch(store.as_ref(), &object, &uid, &root, &mut tmp, &pb).await?
    };
    pb.finish_and_clear();
    if Some(&got) != hash.as_ref() {
        bail!(
            "artifact {uid}: the stored bytes have sha256 {got}, not the registered {} — not written",
            hash.as_deref().unwrap_or("?")
        );
    }
    tmp.persist(&dest)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    println!("{}", dest.display());
    Ok(())
}

/// Stream an object into `tmp` while hashing it; returns the sha256.
async fn fetch(
    store: &dyn ObjectStore,
    object: &ObjectPath,
    uid: &str,
    root: &str,
    tmp: &mut tempfile::NamedTempFile,
    pb: &ProgressBar,
) -> anyhow::Result<String> {
    use futures_util::StreamExt;
    let mut stream = store
        .get(object)
        .await
        .with_context(|| format!("artifact {uid}: cannot read its object in {root}"))?
        .into_stream();
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("artifact {uid}: reading its object failed"))?;
        hasher.update(&chunk);
        tokio::task::block_in_place(|| tmp.as_file_mut().write_all(&chunk))
            .context("writing the file failed")?;
        pb.inc(chunk.len() as u64);
    }
    Ok(format!("{:x}", hasher.finalize()))
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
    fn kernel_copy_with_a_side_hash_matches_a_plain_hash() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let mut dest = tempfile::tempfile_in(dir.path()).unwrap();
        let (h, n) = hash_and_copy_file(&src, &mut dest, true, &ProgressBar::hidden()).unwrap();
        assert_eq!(n as usize, data.len());
        assert_eq!(h, format!("{:x}", Sha256::digest(&data)));
        let mut back = Vec::new();
        use std::io::Seek;
        dest.rewind().unwrap();
        dest.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn hash_reader_hashes_everything() {
        let data = b"hello\nworld\n".repeat(100_000);
        let (h, n) = hash_reader(&data[..], &ProgressBar::hidden()).unwrap();
        assert_eq!(n as usize, data.len());
        assert_eq!(h, format!("{:x}", Sha256::digest(&data)));
    }
}
