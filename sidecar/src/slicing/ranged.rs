//! An object in any storage as the byte source of the pure-Rust HDF5 reader:
//! each read the reader asks for becomes a ranged GET through object_store
//! (counted, for `--stats`). The reader reads one range at a time, so on a
//! remote store every request costs its latency in a row; small reads are
//! therefore served from windows read ahead ([`ReadAhead`]), large ones
//! (X's data chunks in a file big enough to matter) are fetched as they
//! are asked for, without rounding.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use hdf5_reader::storage::DynStorage;
use hdf5_reader::{RangeRequestStorage, Storage, StorageBuffer};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use tokio::runtime::Handle;

/// Reads up to this size go through the read-ahead windows. HDF5's global
/// heap collections (where anndata's strings — the obs and var names —
/// live) are 64 KiB each, so they are included; X's data chunks of a file
/// big enough to matter are larger and go straight to the object.
const SMALL_READ: usize = 64 * 1024;
/// The first window around a read that has nothing cached near it.
const FIRST_WINDOW: u64 = 16 * 1024;
/// Windows grow to at most this size.
const MAX_WINDOW: u64 = 4 * 1024 * 1024;
/// Bytes of windows kept: a file's metadata, indexes and string heaps.
const CACHED_BYTES: u64 = 64 * 1024 * 1024;

type H5Result<T> = hdf5_reader::error::Result<T>;

thread_local! {
    /// Whether this thread is inside [`without_read_ahead`].
    static POINT_READS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `read` with its misses fetched as first windows only, never grown:
/// for reads that know exactly what they need (the chunk index fetched by
/// `prefetch`, node by node, spread over the file), which a walk's growth
/// would pad with the data around each node.
pub fn without_read_ahead<T>(read: impl FnOnce() -> T) -> T {
    /// Puts the flag back however `read` ends (a blocking thread is reused).
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            POINT_READS.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(POINT_READS.with(|p| p.replace(true)));
    read()
}

/// The window to fetch for a read of `len` bytes at `offset` that no cached
/// window holds, given the cached windows (start → length) and the object's
/// length. HDF5 writers put metadata side by side (B-tree nodes, string
/// heap collections one after another), and the reader walks them in an
/// order of its own, forwards and backwards. A read near cached windows
/// continues such a walk: it gets a window four times the longest of them,
/// reaching away from them; any other read gets a first window. "Near" and
/// the longest window are [`MAX_WINDOW`], or a 32nd of a smaller object.
/// On a store that answers in 30 ms at 100 MB/s a request costs as much as
/// 3 MB, so reading ahead a few MiB is cheap once a walk shows itself, and
/// a lone read costs 16 KiB.
fn window(cached: &BTreeMap<u64, u64>, offset: u64, len: u64, object_len: u64) -> (u64, u64) {
    let end = offset + len;
    let align_down = |v: u64| v / FIRST_WINDOW * FIRST_WINDOW;
    let align_up = |v: u64| v.div_ceil(FIRST_WINDOW) * FIRST_WINDOW;
    // A small object is not read whole for a few of its bytes: no window
    // is longer, and no walk reaches farther, than a 32nd of it.
    let cap = (object_len / 32).clamp(FIRST_WINDOW, MAX_WINDOW);
    // The longest window ending at most `cap` before the read (being at
    // most `cap` long, it starts at most twice that before), and the
    // longest starting at most `cap` after it.
    let before = cached
        .range(offset.saturating_sub(2 * cap)..offset)
        .filter(|(s, l)| *s + *l + cap >= offset)
        .map(|(_, l)| *l)
        .max();
    let after = cached
        .range(offset..end.saturating_add(cap))
        .map(|(_, l)| *l)
        .max();
    let grown = |l: u64| (4 * l).min(cap);
    let (start, stop) = match (before, after) {
        // Walking backwards: the window ends where the read ends.
        (None, Some(l)) => {
            let stop = align_up(end);
            (stop.saturating_sub(grown(l)).min(align_down(offset)), stop)
        }
        (Some(l), after) => {
            let start = align_down(offset);
            let l = l.max(after.unwrap_or(0));
            (start, (start + grown(l)).max(align_up(end)))
        }
        (None, None) => {
            let start = align_down(offset);
            (start, (start + FIRST_WINDOW).max(align_up(end)))
        }
    };
    // Bytes already held are not fetched again: the window stops where the
    // next cached one starts, and starts where the one before it ends (but
    // always holds the whole read).
    let next_start = cached.range(offset + 1..).next().map(|(s, _)| *s);
    let stop = next_start.map_or(stop, |s| stop.min(s.max(end)));
    let previous_end = cached
        .range(offset.saturating_sub(2 * cap)..offset)
        .map(|(s, l)| s + l)
        .max();
    let start = previous_end.map_or(start, |e| start.max(e.min(offset)));
    (start, stop.min(object_len) - start)
}

/// Small reads served from windows of the object read ahead (see
/// [`window`]), kept up to [`CACHED_BYTES`] (the oldest go first); large
/// reads straight to the object. Safe to share between threads: a window
/// is fetched without holding the lock.
struct ReadAhead {
    object: DynStorage,
    state: Mutex<Windows>,
}

impl ReadAhead {
    /// The windows, even after a reader panicked holding them: they are a
    /// cache of the object's bytes, each inserted whole, never half-made.
    fn windows(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct Windows {
    /// start → bytes.
    held: BTreeMap<u64, Arc<[u8]>>,
    /// start → length, for [`window`].
    lengths: BTreeMap<u64, u64>,
    /// Starts, oldest first.
    order: VecDeque<u64>,
    bytes: u64,
}

impl Windows {
    /// A cached window holding `offset..offset + len`, and where in it.
    fn find(&self, offset: u64, len: u64) -> Option<(Arc<[u8]>, usize)> {
        // A longer window may start before a shorter one that ends too soon:
        // look back over the windows that could still reach the read.
        self.held
            .range(offset.saturating_sub(MAX_WINDOW)..=offset)
            .rev()
            .find(|(s, b)| **s + b.len() as u64 >= offset + len)
            .map(|(s, b)| (Arc::clone(b), (offset - s) as usize))
    }

    fn insert(&mut self, start: u64, bytes: Arc<[u8]>) {
        let len = bytes.len() as u64;
        if let Some(old) = self.held.insert(start, bytes) {
            self.bytes -= old.len() as u64;
            self.order.retain(|s| *s != start);
        }
        self.lengths.insert(start, len);
        self.order.push_back(start);
        self.bytes += len;
        while self.bytes > CACHED_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.held.remove(&oldest) {
                self.bytes -= b.len() as u64;
            }
            self.lengths.remove(&oldest);
        }
    }
}

impl Storage for ReadAhead {
    fn len(&self) -> u64 {
        self.object.len()
    }

    fn read_range(&self, offset: u64, len: usize) -> H5Result<StorageBuffer> {
        if len > SMALL_READ || len == 0 || offset.saturating_add(len as u64) > self.len() {
            // Large reads, and reads past the end (refused by the object).
            return self.object.read_range(offset, len);
        }
        let (start, n) = {
            let state = self.windows();
            if let Some((bytes, at)) = state.find(offset, len as u64) {
                return StorageBuffer::from_shared(bytes, at, len);
            }
            if POINT_READS.with(|p| p.get()) {
                window(&BTreeMap::new(), offset, len as u64, self.len())
            } else {
                window(&state.lengths, offset, len as u64, self.len())
            }
        };
        let fetched = self.object.read_range(start, n as usize)?;
        let bytes: Arc<[u8]> = Arc::from(fetched.as_ref());
        self.windows().insert(start, Arc::clone(&bytes));
        StorageBuffer::from_shared(bytes, (offset - start) as usize, len)
    }
}

/// The object at `path` (of `len` bytes) as an HDF5 byte source. Call from
/// a blocking thread: reads wait on `runtime`.
pub fn hdf5_source(
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    len: u64,
    runtime: Handle,
) -> DynStorage {
    // The library's range storage refuses reads past the end and answers
    // shorter than asked (a truncated object) as UnexpectedEof, never as a
    // short buffer the reader would index past.
    let object: DynStorage = Arc::new(RangeRequestStorage::new(len, move |offset, n| {
        // The reader is synchronous and runs on a blocking thread
        // (spawn_blocking), where waiting on the runtime is allowed.
        let bytes = runtime
            .block_on(store.get_range(&path, offset..offset + n as u64))
            .map_err(|e| hdf5_reader::error::Error::Io(std::io::Error::other(e)))?;
        Ok(bytes.to_vec())
    }));
    Arc::new(ReadAhead {
        object,
        state: Mutex::new(Windows::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1024;

    #[test]
    fn a_read_far_from_any_window_gets_a_first_window() {
        let none = BTreeMap::new();
        assert_eq!(window(&none, 100, 10, 1 << 30), (0, 16 * K));
        // A read longer than a first window gets all of it, in whole blocks.
        assert_eq!(window(&none, 20 * K, 64 * K, 1 << 30), (16 * K, 80 * K));
        // Never past the object's end.
        assert_eq!(window(&none, 100, 10, 1000), (0, 1000));
        // In an object of 5 MB a walk grows to 160 kB, not 4 MiB.
        let small: BTreeMap<u64, u64> = [(0, 128 * K)].into();
        assert_eq!(window(&small, 128 * K, 8, 5_120 * K), (128 * K, 160 * K));
        let far: BTreeMap<u64, u64> = [(0, 16 * K)].into();
        assert_eq!(window(&far, 8 << 20, 8, 1 << 30), (8 << 20, 16 * K));
    }

    #[test]
    fn a_walk_forwards_grows_its_window_fourfold_up_to_the_limit() {
        let mut cached = BTreeMap::new();
        let (mut at, mut sizes) = (0u64, vec![]);
        for _ in 0..12 {
            let (start, n) = window(&cached, at, 2 * K, 1 << 40);
            assert!(start <= at && start + n >= at + 2 * K);
            cached.insert(start, n);
            sizes.push(n / K);
            at = start + n;
        }
        assert_eq!(
            sizes,
            [16, 64, 256, 1024, 4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096]
        );
    }

    #[test]
    fn a_window_does_not_fetch_again_what_is_held() {
        // Held: 1 MiB + 0..20 KiB and 1 MiB + 192..256 KiB.
        let m = 1 << 20;
        let cached: BTreeMap<u64, u64> = [(m, 20 * K), (m + 192 * K, 64 * K)].into();
        // Forwards: starts where the first ends (not at the 16 KiB block
        // boundary inside it) and stops where the second starts, short of
        // the 80 KiB it would grow to.
        let (start, n) = window(&cached, m + 24 * K, 8, 1 << 30);
        assert_eq!((start, start + n), (m + 20 * K, m + 192 * K));
        // A read straddling a held window's start is fetched whole.
        let (start, n) = window(&cached, m + 188 * K, 8 * K, 1 << 30);
        assert!(start <= m + 188 * K && start + n >= m + 196 * K);
    }

    #[test]
    fn a_walk_backwards_reaches_back() {
        let cached: BTreeMap<u64, u64> = [(1 << 20, 64 * K)].into();
        let (start, n) = window(&cached, (1 << 20) - 10 * K, 16, 1 << 30);
        assert_eq!(start + n, 1 << 20);
        assert_eq!(n, 256 * K);
        // A jump within MAX_WINDOW of a walk continues it.
        let (start, n) = window(&cached, (1 << 20) + 3 * (1 << 20), 16, 1 << 30);
        assert_eq!((start, n), ((1 << 20) + 3 * (1 << 20), 256 * K));
    }

    #[test]
    fn windows_are_found_evicted_oldest_first_and_never_past_their_end() {
        let mut w = Windows::default();
        w.insert(0, Arc::from(vec![1u8; 16 * 1024]));
        w.insert(16 * K, Arc::from(vec![2u8; 4 * 1024 * 1024]));
        assert_eq!(w.find(10, 6).map(|(b, at)| (b[at], at)), Some((1, 10)));
        // Straddling two windows: not held.
        assert!(w.find(16 * K - 4, 8).is_none());
        assert_eq!(
            w.find(16 * K + 5, 8).map(|(b, at)| (b[at], at)),
            Some((2, 5))
        );
        for i in 0..16 {
            w.insert(
                (1 << 30) + i * MAX_WINDOW,
                Arc::from(vec![3u8; MAX_WINDOW as usize]),
            );
        }
        assert!(w.bytes <= CACHED_BYTES);
        assert!(w.find(10, 6).is_none(), "the oldest window went first");
        assert_eq!(w.held.len(), w.lengths.len());
    }
}
