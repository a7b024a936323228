//! Opening import files: checksum, transparent gzip/zstd decompression, and
//! a byte counter that drives the progress bar.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;

/// sha256 of a file's bytes, hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let (hash, _) = lamin_core::content::hash_reader(file, |_| {})
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hash)
}

/// Counts the (compressed) bytes read from the file, for progress.
pub struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The file's contents, decompressed when it starts with the gzip or zstd
/// magic bytes; `read` counts the file bytes consumed so far.
pub fn open_decoded(path: &Path, read: Arc<AtomicU64>) -> anyhow::Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut raw = BufReader::with_capacity(1 << 20, Counting { inner: file, read });
    let head = raw
        .fill_buf()
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(if head.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        let decoder = zstd::Decoder::with_buffer(raw)
            .with_context(|| format!("{}: not a valid zstd stream", path.display()))?;
        Box::new(BufReader::with_capacity(1 << 20, decoder))
    } else if head.starts_with(&[0x1F, 0x8B]) {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    })
}

/// Peak resident memory of this process so far, in bytes.
pub fn peak_rss_bytes() -> u64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0;
    }
    // Linux reports kilobytes.
    (usage.ru_maxrss as u64) * 1024
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_plain_gzip_and_zstd_alike() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"hello\nworld\n";
        let plain = dir.path().join("a.txt");
        std::fs::write(&plain, text).unwrap();
        let gz = dir.path().join("a.gz");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(text).unwrap();
        enc.finish().unwrap();
        let zst = dir.path().join("a.zst");
        std::fs::write(&zst, zstd::encode_all(&text[..], 3).unwrap()).unwrap();
        for p in [&plain, &gz, &zst] {
            let counter = Arc::new(AtomicU64::new(0));
            let mut out = String::new();
            open_decoded(p, counter.clone())
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            assert_eq!(out.as_bytes(), text, "{}", p.display());
            assert_eq!(
                counter.load(Ordering::Relaxed),
                std::fs::metadata(p).unwrap().len()
            );
        }
        // printf 'hello\nworld\n' | sha256sum
        assert_eq!(
            sha256_file(&plain).unwrap(),
            "4a1e67f2fe1d1cc7b31d0ca2ec441da4778203a036a77da10344c85e24ff0f92"
        );
    }
}
