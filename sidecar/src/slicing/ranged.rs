//! An object in any storage as the byte source of the pure-Rust HDF5 reader:
//! each read the reader asks for becomes a ranged GET through object_store
//! (counted, for `--stats`). Small reads (object headers, B-tree nodes,
//! heaps: many small pieces near each other) go through a cache of small
//! blocks, so one request serves many of them; large reads (data chunks)
//! are fetched as they are asked for, without rounding.

use std::sync::Arc;

use hdf5_reader::storage::DynStorage;
use hdf5_reader::{BlockCacheStorage, RangeRequestStorage, Storage, StorageBuffer};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use tokio::runtime::Handle;

/// Reads shorter than this go through the block cache, in blocks of this size.
const BLOCK_BYTES: usize = 16 * 1024;
/// Blocks kept (16 MiB): a file's metadata and indexes.
const CACHED_BLOCKS: usize = 1024;

type H5Result<T> = hdf5_reader::error::Result<T>;

/// Small reads through the block cache, large ones straight to the object.
struct SplitBySize {
    small: BlockCacheStorage,
    large: DynStorage,
}

impl Storage for SplitBySize {
    fn len(&self) -> u64 {
        self.large.len()
    }

    fn read_range(&self, offset: u64, len: usize) -> H5Result<StorageBuffer> {
        if len < BLOCK_BYTES {
            self.small.read_range(offset, len)
        } else {
            self.large.read_range(offset, len)
        }
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
    Arc::new(SplitBySize {
        small: BlockCacheStorage::new(Arc::clone(&object), BLOCK_BYTES, CACHED_BLOCKS),
        large: object,
    })
}
