//! The part of DuckDB's C API that reading a database file's catalog needs,
//! loaded at run time from the DuckDB library (libduckdb.so, as DuckDB's
//! releases and its `@duckdb/node-bindings-linux-x64` npm package ship it).
//! The `duckdb` crate would compile DuckDB from source (a bundled debug
//! build had not finished after 27 minutes on 2 cores, BENCHMARKS.md) or link
//! one library version at build time; loading it keeps the sidecar's build as
//! it is and lets a user pick the version that reads their files.
//!
//! Which library: `LAMIN_DUCKDB_LIBRARY` (a path), else `libduckdb.so` on the
//! system's library path. Files are opened read-only, without external access
//! or extension loading: a file can only be read, never make DuckDB read
//! other files or fetch code.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;
use std::ptr::null_mut;
use std::sync::OnceLock;
use std::time::Duration;

use super::super::c_library::{c_api, open};

/// The environment variable naming the DuckDB library to load.
pub const LIBRARY_VAR: &str = "LAMIN_DUCKDB_LIBRARY";

/// No DuckDB library could be loaded: what was tried and how to get one.
#[derive(Debug, thiserror::Error)]
#[error("no DuckDB library to read it with ({0}): set {LIBRARY_VAR} to a libduckdb.so, e.g. from DuckDB's release libduckdb-linux-amd64.zip or the npm package @duckdb/node-bindings-linux-x64 (npm pack; package/libduckdb.so)")]
pub struct LibraryMissing(String);

type Handle = *mut c_void;

/// DuckDB's `duckdb_result`: filled by a query, freed by destroy_result.
#[repr(C)]
struct RawResult {
    deprecated_column_count: u64,
    deprecated_row_count: u64,
    deprecated_rows_changed: u64,
    deprecated_columns: *mut c_void,
    deprecated_error_message: *mut c_char,
    internal_data: *mut c_void,
}

c_api!("duckdb_" {
    library_version: fn() -> *const c_char;
    create_config: fn(*mut Handle) -> u32;
    set_config: fn(Handle, *const c_char, *const c_char) -> u32;
    destroy_config: fn(*mut Handle);
    open_ext: fn(*const c_char, *mut Handle, Handle, *mut *mut c_char) -> u32;
    close: fn(*mut Handle);
    connect: fn(Handle, *mut Handle) -> u32;
    disconnect: fn(*mut Handle);
    query: fn(Handle, *const c_char, *mut RawResult) -> u32;
    destroy_result: fn(*mut RawResult);
    result_error: fn(*mut RawResult) -> *const c_char;
    row_count: fn(*mut RawResult) -> u64;
    column_count: fn(*mut RawResult) -> u64;
    value_varchar: fn(*mut RawResult, u64, u64) -> *mut c_char;
    value_is_null: fn(*mut RawResult, u64, u64) -> bool;
    free: fn(*mut c_void);
    query_arrow: fn(Handle, *const c_char, *mut Handle) -> u32;
    query_arrow_schema: fn(Handle, *mut *mut c_void) -> u32;
    query_arrow_array: fn(Handle, *mut *mut c_void) -> u32;
    query_arrow_error: fn(Handle) -> *const c_char;
    destroy_arrow: fn(*mut Handle);
    interrupt: fn(Handle);
});

const DUCKDB_SUCCESS: u32 = 0;

static API: OnceLock<Result<Api, String>> = OnceLock::new();

fn api() -> Result<&'static Api, LibraryMissing> {
    // SAFETY: loading runs DuckDB's static constructors; the table is DuckDB's
    // stable C API.
    API.get_or_init(|| unsafe { open(LIBRARY_VAR, "libduckdb.so", Api::load) })
        .as_ref()
        .map_err(|e| LibraryMissing(e.clone()))
}

/// The DuckDB library's version, e.g. "v1.5.6".
pub fn library_version() -> Result<String, LibraryMissing> {
    let api = api()?;
    // SAFETY: a static string of the library.
    Ok(unsafe { CStr::from_ptr((api.library_version)()) }
        .to_string_lossy()
        .into_owned())
}

/// The settings a file is opened with: read-only, no access to anything but
/// the file, no extensions, one thread and bounded memory.
const SETTINGS: [(&str, &str); 7] = [
    ("access_mode", "READ_ONLY"),
    ("enable_external_access", "false"),
    ("autoinstall_known_extensions", "false"),
    ("autoload_known_extensions", "false"),
    ("threads", "1"),
    ("max_memory", "512MB"),
    ("lock_configuration", "true"),
];

/// How long one query may run before it is interrupted: a file can hold
/// generated columns or catalog entries that are slow to read, and a hostile
/// one must not hold a sidecar worker for ever.
pub const QUERY_TIME_LIMIT: Duration = Duration::from_secs(300);

/// An open database file and one connection to it.
pub struct Database {
    api: &'static Api,
    db: Handle,
    con: Handle,
    time_limit: Duration,
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: each handle freed once; null handles are skipped by DuckDB.
        unsafe {
            (self.api.disconnect)(&mut self.con);
            (self.api.close)(&mut self.db);
        }
    }
}

/// One query's result as text cells (None: NULL).
pub type Rows = Vec<Vec<Option<String>>>;

impl Database {
    /// Open a database file read-only (see [`SETTINGS`]).
    pub fn open(path: &Path) -> anyhow::Result<Database> {
        let api = api()?;
        let c_path = cstring(&path.to_string_lossy())?;
        let mut config = null_mut();
        // SAFETY: the config is destroyed below whatever happens.
        if unsafe { (api.create_config)(&mut config) } != DUCKDB_SUCCESS {
            anyhow::bail!("DuckDB could not make a configuration");
        }
        let mut database = Database {
            api,
            db: null_mut(),
            con: null_mut(),
            time_limit: QUERY_TIME_LIMIT,
        };
        let opened = (|| {
            for (name, value) in SETTINGS {
                let (n, v) = (cstring(name)?, cstring(value)?);
                if unsafe { (api.set_config)(config, n.as_ptr(), v.as_ptr()) } != DUCKDB_SUCCESS {
                    anyhow::bail!("DuckDB refused the setting {name} = {value}");
                }
            }
            let mut error: *mut c_char = null_mut();
            let rc =
                unsafe { (api.open_ext)(c_path.as_ptr(), &mut database.db, config, &mut error) };
            if rc != DUCKDB_SUCCESS {
                let message = if error.is_null() {
                    "no message".to_string()
                } else {
                    let m = unsafe { CStr::from_ptr(error) }
                        .to_string_lossy()
                        .into_owned();
                    unsafe { (api.free)(error as *mut c_void) };
                    m
                };
                anyhow::bail!("DuckDB: {message}");
            }
            if unsafe { (api.connect)(database.db, &mut database.con) } != DUCKDB_SUCCESS {
                anyhow::bail!("DuckDB could not connect to the opened file");
            }
            Ok(())
        })();
        unsafe { (api.destroy_config)(&mut config) };
        opened.map(|()| database)
    }

    /// Queries run from now on are interrupted after `limit`.
    pub fn with_time_limit(mut self, limit: Duration) -> Database {
        self.time_limit = limit;
        self
    }

    /// Run `f` (one query on this connection) with a watchdog that interrupts
    /// the connection once the time limit has passed; the error then says so.
    fn limited<T>(&self, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        use std::sync::mpsc::{channel, RecvTimeoutError};
        let (done, wait) = channel::<()>();
        let (api, con, limit) = (self.api, self.con as usize, self.time_limit);
        let watchdog = std::thread::spawn(move || {
            let fired = matches!(wait.recv_timeout(limit), Err(RecvTimeoutError::Timeout));
            if fired {
                // SAFETY: duckdb_interrupt may be called from any thread while
                // the connection is open; it is, until `f` returns below.
                unsafe { (api.interrupt)(con as Handle) };
            }
            fired
        });
        let out = f();
        drop(done);
        let fired = watchdog.join().unwrap_or(false);
        out.map_err(|e| {
            if fired {
                e.context(format!("stopped after {} s", limit.as_secs_f64()))
            } else {
                e
            }
        })
    }

    /// Run a query; every cell as text.
    pub fn query(&self, sql: &str) -> anyhow::Result<Rows> {
        self.limited(|| self.query_unlimited(sql))
    }

    fn query_unlimited(&self, sql: &str) -> anyhow::Result<Rows> {
        let c = cstring(sql)?;
        // SAFETY: an all-zero duckdb_result is its documented empty state;
        // it is destroyed once, after the cells are copied.
        let mut result: RawResult = unsafe { std::mem::zeroed() };
        let rc = unsafe { (self.api.query)(self.con, c.as_ptr(), &mut result) };
        let rows = if rc != DUCKDB_SUCCESS {
            let e = unsafe { (self.api.result_error)(&mut result) };
            let message = if e.is_null() {
                "no message".to_string()
            } else {
                unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
            };
            Err(anyhow::anyhow!("DuckDB: {message}"))
        } else {
            let n_rows = unsafe { (self.api.row_count)(&mut result) };
            let n_cols = unsafe { (self.api.column_count)(&mut result) };
            let mut rows = Vec::with_capacity(n_rows as usize);
            for r in 0..n_rows {
                let mut row = Vec::with_capacity(n_cols as usize);
                for col in 0..n_cols {
                    if unsafe { (self.api.value_is_null)(&mut result, col, r) } {
                        row.push(None);
                        continue;
                    }
                    let v = unsafe { (self.api.value_varchar)(&mut result, col, r) };
                    if v.is_null() {
                        row.push(None);
                    } else {
                        row.push(Some(
                            unsafe { CStr::from_ptr(v) }.to_string_lossy().into_owned(),
                        ));
                        unsafe { (self.api.free)(v as *mut c_void) };
                    }
                }
                rows.push(row);
            }
            Ok(rows)
        };
        unsafe { (self.api.destroy_result)(&mut result) };
        rows
    }
}

impl Database {
    /// Run a query and take its result as one arrow batch (through the Arrow
    /// C data interface: DuckDB fills the structs, arrow-rs takes them over).
    pub fn query_arrow(&self, sql: &str) -> anyhow::Result<arrow::record_batch::RecordBatch> {
        self.limited(|| self.query_arrow_unlimited(sql))
    }

    fn query_arrow_unlimited(&self, sql: &str) -> anyhow::Result<arrow::record_batch::RecordBatch> {
        use arrow::array::{Array, StructArray};
        use arrow::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
        let api = self.api;
        let c = cstring(sql)?;
        let mut result = null_mut();
        // SAFETY: the result is destroyed once below; DuckDB writes the
        // schema and each array into the structs whose addresses it is given.
        let rc = unsafe { (api.query_arrow)(self.con, c.as_ptr(), &mut result) };
        let batches = (|| {
            if rc != DUCKDB_SUCCESS {
                let e = unsafe { (api.query_arrow_error)(result) };
                let message = if e.is_null() {
                    "no message".to_string()
                } else {
                    unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
                };
                anyhow::bail!("DuckDB: {message}");
            }
            let mut schema = FFI_ArrowSchema::empty();
            let mut out = &mut schema as *mut FFI_ArrowSchema as *mut c_void;
            if unsafe { (api.query_arrow_schema)(result, &mut out) } != DUCKDB_SUCCESS {
                anyhow::bail!("DuckDB could not export the result's schema");
            }
            let arrow_schema = std::sync::Arc::new(arrow::datatypes::Schema::try_from(&schema)?);
            let mut batches = Vec::new();
            loop {
                let mut array = FFI_ArrowArray::empty();
                let mut out = &mut array as *mut FFI_ArrowArray as *mut c_void;
                if unsafe { (api.query_arrow_array)(result, &mut out) } != DUCKDB_SUCCESS {
                    anyhow::bail!("DuckDB could not export the result's rows");
                }
                // (An array left empty, without a release callback, ends the rows.)
                if array.is_released() {
                    break;
                }
                let data = unsafe { from_ffi(array, &schema) }?;
                // (A corrupt file must give an error here, not a panic later.)
                data.validate_full()?;
                let rows = StructArray::from(data);
                if rows.is_empty() {
                    continue;
                }
                batches.push(arrow::record_batch::RecordBatch::from(rows));
            }
            Ok(arrow::compute::concat_batches(&arrow_schema, &batches)?)
        })();
        unsafe { (api.destroy_arrow)(&mut result) };
        batches
    }
}

fn cstring(s: &str) -> anyhow::Result<CString> {
    CString::new(s).map_err(|_| anyhow::anyhow!("{s:?} holds a NUL byte"))
}
