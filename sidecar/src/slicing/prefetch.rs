//! A chunked dataset's index (a v1 B-tree, as h5py and anndata write it)
//! fetched by several threads before the reader walks it. hdf5-reader
//! walks the index one node at a time and, for a read of a range, enters
//! every node of the tree (it narrows by the range only at the leaves), so
//! the first read of a 1 GB X's `data` waited for each of its ~150 leaves,
//! spread over the file, one after another: 4 s on a store that answers
//! in 30 ms. Fetched here by up to `threads` at once, the nodes are in the
//! source's read-ahead windows when the reader walks them.

use hdf5_reader::btree_v1::{collect_btree_v1_leaves_storage, BTreeV1Node};
use hdf5_reader::error::{Error, Result};
use hdf5_reader::io::Cursor;
use hdf5_reader::messages::layout::DataLayout;
use hdf5_reader::messages::HdfMessage;
use hdf5_reader::object_header::ObjectHeader;
use hdf5_reader::{Dataset, Hdf5File, Storage};

/// Levels a chunk index is walked down before its subtrees are shared out
/// (a real one of a 1 GB dataset has 2 or 3).
const MAX_DEPTH: usize = 16;

/// Fetch every node of `ds`'s chunk index, on up to `threads` threads.
/// Datasets without a v1 B-tree index (contiguous ones, and the newer
/// indexes of files written with the latest format) are left alone. Only a
/// warming of the cache: a node that cannot be read is left for the
/// reader's own walk, which refuses the file by name.
pub fn chunk_index(file: &Hdf5File, ds: &Dataset, threads: usize) {
    if let Err(e) = super::ranged::without_read_ahead(|| walk(file, ds, threads)) {
        tracing::debug!(
            dataset = ds.name(),
            "the chunk index was not prefetched: {e}"
        );
    }
}

fn walk(file: &Hdf5File, ds: &Dataset, threads: usize) -> Result<()> {
    let superblock = file.superblock();
    let (offset_size, length_size) = (superblock.offset_size, superblock.length_size);
    let storage = file.storage();
    let header = ObjectHeader::parse_at_storage(storage, ds.address(), offset_size, length_size)?;
    let root = header.messages.iter().find_map(|m| match m {
        HdfMessage::DataLayout(message) => match &message.layout {
            DataLayout::Chunked {
                address,
                chunk_indexing: None,
                ..
            } => Some(*address),
            _ => None,
        },
        _ => None,
    });
    let (Some(root), Some(chunk_dims)) = (root, ds.chunks()) else {
        return Ok(());
    };
    if Cursor::is_undefined_offset(root, offset_size) {
        return Ok(());
    }
    let ndims = ds.ndim() as u32;
    let node = |address: u64| node(storage, address, offset_size, length_size, ndims);
    // Down the tree, a level at a time, while it is too narrow to share;
    // each node once, and no deeper than a real tree goes (a damaged file
    // could name a node as its own child, or give a node no children).
    let mut frontier = vec![root];
    let mut seen = std::collections::HashSet::from([root]);
    let mut depth = 0;
    while frontier.len() < threads {
        depth += 1;
        if frontier.is_empty() || depth > MAX_DEPTH {
            return Ok(());
        }
        let nodes = frontier
            .iter()
            .map(|a| node(*a))
            .collect::<Result<Vec<_>>>()?;
        if nodes.iter().any(|n| n.level == 0) {
            return Ok(()); // the leaves are read: nothing below them
        }
        frontier = nodes
            .into_iter()
            .flat_map(|n| n.children)
            .filter(|c| seen.insert(*c))
            .collect();
    }
    // Each thread walks its share of the subtrees with the reader's own walk.
    let share = frontier.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let walks: Vec<_> = frontier
            .chunks(share)
            .map(|subtrees| {
                let chunk_dims = &chunk_dims;
                scope.spawn(move || {
                    super::ranged::without_read_ahead(|| {
                        for &subtree in subtrees {
                            collect_btree_v1_leaves_storage(
                                storage,
                                subtree,
                                offset_size,
                                length_size,
                                Some(ndims),
                                chunk_dims,
                                None,
                            )?;
                        }
                        Ok(())
                    })
                })
            })
            .collect();
        walks.into_iter().try_for_each(|w| {
            w.join().unwrap_or_else(|_| {
                Err(Error::InvalidData(
                    "a walk of the chunk index stopped".into(),
                ))
            })
        })
    })
}

/// One node of a v1 chunk B-tree, read as the reader reads it: its header
/// (which says how many entries follow), then the whole node.
fn node(
    storage: &dyn Storage,
    address: u64,
    offset_size: u8,
    length_size: u8,
    ndims: u32,
) -> Result<BTreeV1Node> {
    // "TREE", type, level, entries used (u16), left and right siblings.
    let header_len = 8 + 2 * usize::from(offset_size);
    let header = storage.read_range(address, header_len)?;
    let entries = usize::from(u16::from_le_bytes([header[6], header[7]]));
    // A chunk key: its size and filter mask, then ndims + 1 offsets of 8 bytes.
    let key_len = 8 + (ndims as usize + 1) * 8;
    let len = header_len + (entries + 1) * key_len + entries * usize::from(offset_size);
    let bytes = storage.read_range(address, len)?;
    BTreeV1Node::parse(
        &mut Cursor::new(&bytes),
        offset_size,
        length_size,
        Some(ndims),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use hdf5_reader::storage::DynStorage;
    use hdf5_reader::{SliceInfo, SliceInfoElem, StorageBuffer};

    use super::*;

    /// The file's bytes, remembering where each read began.
    struct Recording {
        bytes: Arc<[u8]>,
        starts: Mutex<Vec<u64>>,
    }

    impl Storage for Recording {
        fn len(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn read_range(&self, offset: u64, len: usize) -> Result<StorageBuffer> {
            self.starts.lock().unwrap().push(offset);
            StorageBuffer::from_shared(Arc::clone(&self.bytes), offset as usize, len)
        }
    }

    /// Where the reads through `storage` began at a B-tree node.
    fn nodes_read(storage: &Recording) -> BTreeSet<u64> {
        let starts = storage.starts.lock().unwrap();
        starts
            .iter()
            .filter(|s| storage.bytes.get(**s as usize..**s as usize + 4) == Some(b"TREE"))
            .copied()
            .collect()
    }

    #[test]
    fn the_nodes_fetched_are_the_ones_the_reader_walks() {
        // 5,000 chunks of 4 entries: a chunk index of some hundred nodes,
        // more than one level deep.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunked.h5");
        let values: Vec<i32> = (0..20_000).collect();
        let file = hdf5::File::create(&path).unwrap();
        file.new_dataset::<i32>()
            .chunk(4)
            .shape(values.len())
            .create("d")
            .unwrap()
            .write(&values)
            .unwrap();
        drop(file);
        let bytes: Arc<[u8]> = std::fs::read(&path).unwrap().into();
        let open = || {
            let storage = Arc::new(Recording {
                bytes: Arc::clone(&bytes),
                starts: Mutex::new(Vec::new()),
            });
            let file = Hdf5File::from_storage(Arc::clone(&storage) as DynStorage).unwrap();
            (storage, file)
        };

        let (fetched, file) = open();
        let ds = file.dataset("d").unwrap();
        walk(&file, &ds, 4).unwrap();
        let prefetched = nodes_read(&fetched);

        // The reader's own walk, for one entry in the middle.
        let (walked, file) = open();
        let one = SliceInfo {
            selections: vec![SliceInfoElem::Slice {
                start: 10_001,
                end: 10_002,
                step: 1,
            }],
        };
        let read = file.dataset("d").unwrap().read_slice::<i32>(&one).unwrap();
        assert_eq!(read.iter().copied().collect::<Vec<_>>(), vec![10_001]);
        let needed = nodes_read(&walked);
        assert!(needed.len() > 20, "a deep index: {} nodes", needed.len());
        assert_eq!(prefetched, needed);

        // A dataset that is not chunked has no index to fetch.
        let dir2 = tempfile::tempdir().unwrap();
        let plain = dir2.path().join("plain.h5");
        let f = hdf5::File::create(&plain).unwrap();
        f.new_dataset::<i32>()
            .shape(3)
            .create("d")
            .unwrap()
            .write(&[1, 2, 3])
            .unwrap();
        drop(f);
        let file = Hdf5File::open(&plain).unwrap();
        walk(&file, &file.dataset("d").unwrap(), 4).unwrap();
    }

    #[test]
    fn a_node_that_names_itself_as_its_children_ends_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("looped.h5");
        let file = hdf5::File::create(&path).unwrap();
        file.new_dataset::<i32>()
            .chunk(4)
            .shape(20_000)
            .create("d")
            .unwrap()
            .write(&(0..20_000).collect::<Vec<i32>>())
            .unwrap();
        drop(file);
        let mut bytes = std::fs::read(&path).unwrap();
        // Every internal node of the index: its children all become itself.
        let key = 8 + 2 * 8; // a 1-d chunk key
        let mut looped = 0;
        for at in 0..bytes.len() - 8 {
            if &bytes[at..at + 4] == b"TREE" && bytes[at + 4] == 1 && bytes[at + 5] > 0 {
                let entries = u16::from_le_bytes([bytes[at + 6], bytes[at + 7]]) as usize;
                for i in 0..entries {
                    let child = at + 24 + key + i * (key + 8);
                    bytes[child..child + 8].copy_from_slice(&(at as u64).to_le_bytes());
                }
                looped += 1;
            }
        }
        assert!(looped > 0, "the index has internal nodes");
        std::fs::write(&path, &bytes).unwrap();
        let file = Hdf5File::open(&path).unwrap();
        let ds = file.dataset("d").unwrap();
        // Ends at once (the reader's own walk then refuses the file): asked
        // to share the tree among many threads, a walk without its seen set
        // would go down the same node again and again, its frontier growing
        // to entries^depth.
        chunk_index(&file, &ds, 4);
        let _ = walk(&file, &ds, 100_000);
    }
}
