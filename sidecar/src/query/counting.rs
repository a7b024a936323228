//! An object store that counts the bytes read through it: what `lamin query
//! --stats` reports, so that a filter reading 1 % of a collection can be seen
//! to read about that much.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    coalesce_ranges, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, OBJECT_STORE_COALESCE_DEFAULT,
};

/// Reads of an inner store, counted (bytes and requests).
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    bytes: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

/// The counters a [`CountingStore`] adds to.
#[derive(Debug, Clone, Default)]
pub struct ReadCounter {
    bytes: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
}

impl ReadCounter {
    /// `inner`, with its reads counted here.
    pub fn wrap(&self, inner: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
        Arc::new(CountingStore {
            inner,
            bytes: Arc::clone(&self.bytes),
            requests: Arc::clone(&self.requests),
        })
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl CountingStore {
    fn count(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if !head {
            self.count(result.range.end - result.range.start);
        }
        Ok(result)
    }

    async fn get_range(&self, location: &Path, range: Range<u64>) -> Result<Bytes> {
        let bytes = self.inner.get_range(location, range).await?;
        self.count(bytes.len() as u64);
        Ok(bytes)
    }

    /// Ranges close together are fetched as one (as object_store's remote
    /// stores do), each fetch through [`Self::get_range`]: what is counted
    /// is what was fetched, gaps included, once per request.
    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        coalesce_ranges(
            ranges,
            |range| self.get_range(location, range),
            OBJECT_STORE_COALESCE_DEFAULT,
        )
        .await
    }

    async fn head(&self, location: &Path) -> Result<ObjectMeta> {
        self.inner.head(location).await
    }

    async fn delete(&self, location: &Path) -> Result<()> {
        self.inner.delete(location).await
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.copy(from, to).await
    }

    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}
