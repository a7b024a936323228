//! `lamin save` and `lamin get`: moving an artifact's bytes (a file or a
//! folder) between the client's disk and a storage root (local disk, S3 and
//! S3-compatible, GCS, Azure, through object_store), with the full-content
//! sha256 checked on both ways.
//!
//! Save: hash the content (pass 1) → lamin.begin_upload registers it by
//! content (known content: nothing is uploaded) → upload to
//! {root}/.lamindb/{uid}{suffix} (a folder: its files under that prefix),
//! hashing again (pass 2; bounded memory) → lamin.finish_upload marks it ready
//! only if both hashes agree. A file appears under its name only when
//! complete (S3 multipart completion, a rename on local disk), and a crash
//! leaves the artifact 'pending', never 'ready' without bytes; the storage
//! sweep (lamin.sweep_storage) recovers or fails what an interrupted save left.
//!
//! Credentials come from the environment only (see `storage`).

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};

use lamin_core::content::{folder_hash, FileHash};

use crate::cli::DbArgs;
use crate::storage::{local_folder_files, Storage};

#[derive(Debug, Args)]
pub struct SaveArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The file or folder to save.
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
    /// The run (uid, from lamin.track) that creates this artifact.
    #[arg(long, env = "LAMIN_RUN")]
    pub run: Option<String>,
    /// The space (name or uid) the artifact goes to (default: "all"); needs write on it.
    #[arg(long, env = "LAMIN_SPACE")]
    pub space: Option<String>,
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
    /// The run (uid, from lamin.track) that reads this artifact: recorded as one of its inputs.
    #[arg(long, env = "LAMIN_RUN")]
    pub run: Option<String>,
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

/// The object path of an artifact within its storage root: .lamindb/{uid}{suffix}.
fn object_name(uid: &str, suffix: &str) -> String {
    format!(".lamindb/{uid}{suffix}")
}

pub fn db_message(e: tokio_postgres::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or(e.to_string())
    )
}

/// What `lamin save` was given: one file, or a folder's files (relative
/// path with `/`, full path), sorted.
enum Source {
    File(PathBuf),
    Folder(Vec<(String, PathBuf)>),
}

impl Source {
    fn n_files(&self) -> Option<i64> {
        match self {
            Source::File(_) => None,
            Source::Folder(files) => Some(files.len() as i64),
        }
    }
}

/// Tells the database, at most once a minute, that a pending upload is
/// alive, so that it is not taken for abandoned (lamin.touch_upload).
struct Keepalive<'a> {
    client: &'a tokio_postgres::Client,
    uid: &'a str,
    last: std::sync::Mutex<std::time::Instant>,
}

impl Keepalive<'_> {
    async fn tick(&self) {
        let due = {
            let mut last = self.last.lock().expect("keepalive clock");
            let due = last.elapsed() >= std::time::Duration::from_secs(60);
            if due {
                *last = std::time::Instant::now();
            }
            due
        };
        if due {
            let _ = self
                .client
                .execute("SELECT lamin.touch_upload($1)", &[&self.uid])
                .await;
        }
    }
}

/// Upload a file as one object while hashing it; returns the sha256. Large
/// files go up in parts (bounded memory), small ones in one request.
async fn upload(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    file: &Path,
    pb: &ProgressBar,
    alive: &Keepalive<'_>,
) -> anyhow::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut input = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("cannot open {}", file.display()))?;
    let len = input.metadata().await?.len();
    if len < UPLOAD_PART as u64 {
        let mut bytes = Vec::with_capacity(len as usize);
        input
            .read_to_end(&mut bytes)
            .await
            .with_context(|| format!("cannot read {}", file.display()))?;
        let hash = format!("{:x}", Sha256::digest(&bytes));
        pb.inc(bytes.len() as u64);
        store
            .put(path, bytes.into())
            .await
            .context("the upload failed")?;
        return Ok(hash);
    }
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
        alive.tick().await;
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
/// Files of a folder uploaded at once: memory stays under 4 × 4 parts.
const FOLDER_UPLOADS_IN_FLIGHT: usize = 4;

/// lamin.begin_upload: the artifact's uid, with the suffix the database
/// recorded when the bytes are ours to write (the object's name is
/// {uid}{suffix}), or None (after saying so) when the content is already
/// stored or being uploaded by another save.
async fn begin(
    client: &tokio_postgres::Client,
    args: &SaveArgs,
    hash: &str,
    size: u64,
    suffix: &Option<String>,
    n_files: Option<i64>,
) -> anyhow::Result<(String, Option<String>)> {
    let row = client
        .query_one(
            "SELECT uid, upload, status, path FROM lamin.begin_upload($1, $2, $3, $4, $5, $6, $7)",
            &[
                &hash,
                &(size as i64),
                &args.key,
                suffix,
                &args.description,
                &args.storage,
                &n_files,
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
        return Ok((uid, Some(suffix)));
    }
    if row.get::<_, String>(2) == "pending" {
        println!("{uid} (same content is being uploaded by another save; the artifact is pending until it finishes)");
    } else {
        println!("{uid} (same content already saved: nothing uploaded)");
    }
    Ok((uid, None))
}

/// Make `run` the session's current run (lamin.use_run), so that what the
/// session saves or reads is recorded in it.
async fn use_run(client: &tokio_postgres::Client, run: &Option<String>) -> anyhow::Result<()> {
    if let Some(run) = run {
        client
            .query_one("SELECT lamin.use_run($1)", &[run])
            .await
            .map_err(db_message)
            .context("nothing was done")?;
    }
    Ok(())
}

/// A saved table (parquet, CSV, TSV): record its rows and columns (features,
/// `columns` schema). A file that cannot be read as its suffix says stays
/// saved as plain bytes, with a warning.
async fn describe_table(client: &tokio_postgres::Client, uid: &str, suffix: &str, source: &Source) {
    // Files by suffix; a folder only as an AnnData zarr store.
    let path = match source {
        Source::File(path) => path.clone(),
        Source::Folder(files) if suffix == ".zarr" => match files.first() {
            Some((relative, full)) => {
                let depth = relative.split('/').count();
                full.ancestors()
                    .nth(depth)
                    .map(Path::to_path_buf)
                    .unwrap_or_default()
            }
            None => return,
        },
        Source::Folder(_) => return,
    };
    let path = &path;
    if !crate::tabular::is_table_suffix(suffix) {
        return;
    }
    match crate::tabular::describe_and_record(client, uid, path, suffix).await {
        Ok(result) => {
            // Tables report conflicts at the top, AnnData per slot (obs, var).
            let conflicts: Vec<serde_json::Value> = [&result, &result["obs"], &result["var"]]
                .iter()
                .filter_map(|r| r.get("conflicts").and_then(|c| c.as_array()))
                .flatten()
                .cloned()
                .collect();
            if !conflicts.is_empty() {
                eprintln!(
                    "warning: {uid}: columns whose features have another dtype (left as they are): {}",
                    serde_json::Value::from(conflicts)
                );
            }
        }
        Err(e) => eprintln!("warning: {uid} is saved as plain bytes: {e:#}"),
    }
}

/// sha256 of every file of a folder and the folder's hash (blocking).
fn hash_folder(files: &[(String, PathBuf)], pb: &ProgressBar) -> anyhow::Result<(String, u64)> {
    let mut hashes = Vec::with_capacity(files.len());
    let mut size = 0;
    for (relative, full) in files {
        let input =
            std::fs::File::open(full).with_context(|| format!("cannot open {}", full.display()))?;
        let (sha256, n) =
            hash_reader(input, pb).with_context(|| format!("cannot read {}", full.display()))?;
        size += n;
        hashes.push(FileHash {
            path: relative.clone(),
            sha256,
        });
    }
    Ok((folder_hash(&mut hashes), size))
}

/// Save a file or folder; returns the artifact's uid.
pub async fn save(args: SaveArgs) -> anyhow::Result<String> {
    let path = args.file.clone();
    // A bad key is refused before anything is read, registered or sent.
    if let Some(key) = &args.key {
        lamin_core::key::validate_key(key)
            .map_err(|e| anyhow::anyhow!("invalid key {key:?}: {e}; nothing was saved"))?;
    }
    let meta =
        std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let source = if meta.is_dir() {
        Source::Folder(local_folder_files(&path)?)
    } else {
        // Unreadable files fail here, before anything is registered.
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        Source::File(path.clone())
    };
    let total: u64 = match &source {
        Source::File(_) => meta.len(),
        Source::Folder(files) => files
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum(),
    };
    let client = crate::db::open(&args.db.database_url).await?;
    use_run(&client, &args.run).await?;
    if let Some(space) = &args.space {
        client
            .query_one("SELECT lamin.use_space($1)", &[space])
            .await
            .map_err(db_message)
            .context("nothing was saved")?;
    }
    let root: String = client
        .query_one(
            "SELECT s.root FROM lamin.storage s WHERE s.id = lamin.storage_id($1)",
            &[&args.storage],
        )
        .await
        .map_err(db_message)
        .context("nothing was saved")?
        .get(0);
    let suffix = suffix_of(args.key.as_deref().map(Path::new).unwrap_or(&path));
    if root.starts_with('/') {
        return save_local(&args, &client, &root, &source, total, &suffix).await;
    }

    // Pass 1: the content hash decides whether anything needs uploading.
    let pb = progress(total, args.quiet, "hashing");
    let (hash, size) = tokio::task::block_in_place(|| match &source {
        Source::File(p) => {
            let file =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            hash_reader(file, &pb).with_context(|| format!("cannot read {}", p.display()))
        }
        Source::Folder(files) => hash_folder(files, &pb),
    })?;
    pb.finish_and_clear();
    // The storage must answer before anything is registered.
    let storage = Storage::open(&root)?;
    storage
        .check_reachable()
        .await
        .context("nothing was saved")?;
    let (uid, stored_suffix) =
        begin(&client, &args, &hash, size, &suffix, source.n_files()).await?;
    let Some(stored_suffix) = stored_suffix else {
        return Ok(uid);
    };

    // Pass 2: upload while hashing again.
    let name = object_name(&uid, &stored_suffix);
    let pb = progress(size, args.quiet, "saving");
    let alive = Keepalive {
        client: &client,
        uid: &uid,
        last: std::sync::Mutex::new(std::time::Instant::now()),
    };
    let uploaded = match &source {
        Source::File(p) => upload(storage.store(), &storage.path(&name), p, &pb, &alive).await,
        Source::Folder(files) => {
            // A few files at a time (each with its own parts in flight):
            // many small files are bound by request latency.
            use futures_util::{StreamExt, TryStreamExt};
            let (storage, name, pb, alive) = (&storage, &name, &pb, &alive);
            futures_util::stream::iter(files)
                .map(|(relative, full)| async move {
                    let object = storage.path(&format!("{name}/{relative}"));
                    let sha256 = upload(storage.store(), &object, full, pb, alive).await?;
                    alive.tick().await;
                    Ok::<_, anyhow::Error>(FileHash {
                        path: relative.clone(),
                        sha256,
                    })
                })
                .buffered(FOLDER_UPLOADS_IN_FLIGHT)
                .try_collect::<Vec<_>>()
                .await
                .map(|mut hashes| folder_hash(&mut hashes))
        }
    };
    pb.finish_and_clear();
    let outcome = match uploaded {
        Ok(again) if again == hash => Ok(again),
        Ok(again) => Err(anyhow::anyhow!(
            "{} changed while it was being saved (sha256 {hash} then {again})",
            path.display()
        )),
        Err(e) => Err(e),
    };
    if outcome.is_err() {
        let _ = storage.delete(&name, source.n_files().is_some()).await;
    }
    finish(&client, &uid, outcome).await?;
    describe_table(&client, &uid, &stored_suffix, &source).await;
    Ok(uid)
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
                "artifact {uid} is marked failed; saving it again retries"
            )))
        }
    }
}

/// Local storage in one pass: copy into a temporary file (or folder) next to
/// the object's place while hashing, then register; known content drops the
/// copy, new content is renamed into place (atomic) before it is marked ready.
/// Copies are flushed to disk before the rename.
async fn save_local(
    args: &SaveArgs,
    client: &tokio_postgres::Client,
    root: &str,
    source: &Source,
    total: u64,
    suffix: &Option<String>,
) -> anyhow::Result<String> {
    let dir = Path::new(root).join(".lamindb");
    std::fs::create_dir_all(&dir).with_context(|| {
        format!(
            "storage {root} is not usable: cannot create {}",
            dir.display()
        )
    })?;
    let unusable = || {
        format!(
            "storage {root} is not usable: cannot write in {}",
            dir.display()
        )
    };
    let pb = progress(total, args.quiet, "saving");
    match source {
        Source::File(file) => {
            let mut tmp = tempfile::Builder::new()
                .prefix(".lamin-save-")
                .tempfile_in(&dir)
                .with_context(unusable)?;
            let (hash, size) = tokio::task::block_in_place(|| {
                hash_and_copy_file(file, tmp.as_file_mut(), true, &pb)
            })?;
            pb.finish_and_clear();
            // Known content: the temporary copy is removed when dropped.
            let (uid, stored_suffix) = begin(client, args, &hash, size, suffix, None).await?;
            let Some(stored_suffix) = stored_suffix else {
                return Ok(uid);
            };
            let target = dir.join(format!("{uid}{stored_suffix}"));
            let written = tmp.persist(&target).map(|_| hash).map_err(|e| {
                anyhow::anyhow!("cannot move the copy to {}: {}", target.display(), e.error)
            });
            finish(client, &uid, written).await?;
            describe_table(client, &uid, &stored_suffix, source).await;
            Ok(uid)
        }
        Source::Folder(files) => {
            let tmp = tempfile::Builder::new()
                .prefix(".lamin-save-")
                .tempdir_in(&dir)
                .with_context(unusable)?;
            let (hash, size) = tokio::task::block_in_place(|| -> anyhow::Result<(String, u64)> {
                let mut hashes = Vec::with_capacity(files.len());
                let mut size = 0;
                for (relative, full) in files {
                    let target = tmp.path().join(relative);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let mut out = std::fs::File::create(&target)
                        .with_context(|| format!("cannot write {}", target.display()))?;
                    let (sha256, n) = hash_and_copy_file(full, &mut out, true, &pb)?;
                    size += n;
                    hashes.push(FileHash {
                        path: relative.clone(),
                        sha256,
                    });
                }
                Ok((folder_hash(&mut hashes), size))
            })?;
            pb.finish_and_clear();
            let (uid, stored_suffix) =
                begin(client, args, &hash, size, suffix, source.n_files()).await?;
            let Some(stored_suffix) = stored_suffix else {
                return Ok(uid);
            };
            let target = dir.join(format!("{uid}{stored_suffix}"));
            // A failed earlier attempt may have left its copy: ours to replace.
            let _ = std::fs::remove_dir_all(&target);
            let kept = tmp.keep();
            let written = std::fs::rename(&kept, &target).map(|_| hash).map_err(|e| {
                let _ = std::fs::remove_dir_all(&kept);
                anyhow::anyhow!("cannot move the copy to {}: {e}", target.display())
            });
            finish(client, &uid, written).await?;
            describe_table(client, &uid, &stored_suffix, source).await;
            Ok(uid)
        }
    }
}

pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let client = crate::db::open(&args.db.database_url).await?;
    use_run(&client, &args.run).await?;
    let row = client
        .query_one(
            "SELECT a.uid, a.key, a.suffix, a.hash, a.status, a.size, s.root, lamin.object_key(a),
                    a.n_files IS NOT NULL, a.status_detail
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
    let object: String = row.get(7);
    let folder: bool = row.get(8);
    let detail: Option<String> = row.get(9);
    if status != "ready" {
        bail!(
            "artifact {uid} is {status}{}: its bytes are not (yet) verified in storage",
            detail.map(|d| format!(" ({d})")).unwrap_or_default()
        );
    }
    let dest = args.to.clone().unwrap_or_else(|| {
        let name = key
            .as_deref()
            .and_then(|k| Path::new(k).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{uid}{suffix}"));
        PathBuf::from(name)
    });
    let dest = if dest.is_dir() && !folder {
        dest.join(format!("{uid}{suffix}"))
    } else {
        dest
    };
    let pb = progress(size.unwrap_or(0) as u64, args.quiet, "getting");
    if root.starts_with('/') && !folder {
        // Local disk: a kernel copy with the hash computed beside it.
        let source = Path::new(&root).join(&object);
        if !source.is_file() {
            bail!("artifact {uid}: its object {} is missing", source.display());
        }
        let dir = dest
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        let got = tokio::task::block_in_place(|| {
            hash_and_copy_file(&source, tmp.as_file_mut(), false, &pb)
        })?
        .0;
        pb.finish_and_clear();
        check_hash(&uid, &got, hash.as_deref())?;
        tmp.persist(&dest)
            .with_context(|| format!("cannot write {}", dest.display()))?;
    } else {
        if folder && dest.exists() {
            bail!(
                "{} exists: lamin get does not overwrite folders",
                dest.display()
            );
        }
        let storage = Storage::open(&root)?;
        // Downloaded beside `dest` (a name of this process), checked, then put in place.
        let staging = dest.with_file_name(format!(
            ".lamin-get-{}-{}",
            std::process::id(),
            dest.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        let got = storage
            .download(&object, folder, &staging, &|n| pb.inc(n))
            .await
            .with_context(|| format!("artifact {uid}: cannot read its object in {root}"))?;
        pb.finish_and_clear();
        let checked = check_hash(&uid, &got.hash, hash.as_deref());
        let placed = checked.and_then(|_| {
            std::fs::rename(&staging, &dest)
                .with_context(|| format!("cannot write {}", dest.display()))
        });
        if placed.is_err() {
            crate::storage::remove_path(&staging);
        }
        placed?;
    }
    // lamin.get records the artifact as an input of the current run, if any.
    if args.run.is_some() {
        client
            .query_one("SELECT (lamin.get($1)).uid", &[&uid])
            .await
            .map_err(db_message)
            .context("the file was written, but recording it as an input of the run failed")?;
    }
    println!("{}", dest.display());
    Ok(())
}

fn check_hash(uid: &str, got: &str, registered: Option<&str>) -> anyhow::Result<()> {
    if Some(got) != registered {
        bail!(
            "artifact {uid}: the stored bytes have sha256 {got}, not the registered {} — not written",
            registered.unwrap_or("?")
        );
    }
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
