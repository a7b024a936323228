//! The part of TileDB's C API that reading a SOMA experiment needs, loaded
//! at run time from the TileDB library (libtiledb.so 2.x, as the `tiledbsoma`
//! and `tiledb` wheels ship it): no Rust crate wraps TileDB, and linking it
//! at build time would make every build of the sidecar need it.
//!
//! Which library: `LAMIN_TILEDB_LIBRARY` (a path), else `libtiledb.so` on the
//! system's library path. The handles below free themselves; every call's
//! status is checked and a failure carries TileDB's own message.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::null_mut;
use std::sync::OnceLock;

use super::super::c_library::{c_api, open};

/// The environment variable naming the TileDB library to load.
pub const LIBRARY_VAR: &str = "LAMIN_TILEDB_LIBRARY";

/// No TileDB library could be loaded: what was tried and how to get one.
#[derive(Debug, thiserror::Error)]
#[error("no TileDB library to read it with ({0}): set {LIBRARY_VAR} to a libtiledb.so 2.x, e.g. the one the tiledbsoma wheel ships (pip download tiledbsoma==2.3.0 --no-deps; unzip; tiledbsoma.libs/libtiledb-*.so.2.30)")]
pub struct LibraryMissing(String);

type Handle = *mut c_void;

c_api!("tiledb_" {
    version: fn(*mut i32, *mut i32, *mut i32);
    ctx_alloc: fn(Handle, *mut Handle) -> i32;
    ctx_free: fn(*mut Handle);
    ctx_get_last_error: fn(Handle, *mut Handle) -> i32;
    error_message: fn(Handle, *mut *const c_char) -> i32;
    error_free: fn(*mut Handle);
    string_view: fn(Handle, *mut *const c_char, *mut usize) -> i32;
    string_free: fn(*mut Handle) -> i32;
    datatype_to_str: fn(u32, *mut *const c_char) -> i32;
    object_type: fn(Handle, *const c_char, *mut i32) -> i32;
    group_alloc: fn(Handle, *const c_char, *mut Handle) -> i32;
    group_open: fn(Handle, Handle, u32) -> i32;
    group_close: fn(Handle, Handle) -> i32;
    group_free: fn(*mut Handle);
    group_get_metadata: fn(Handle, Handle, *const c_char, *mut u32, *mut u32, *mut *const c_void) -> i32;
    group_get_member_count: fn(Handle, Handle, *mut u64) -> i32;
    group_get_member_by_index_v2: fn(Handle, Handle, u64, *mut Handle, *mut i32, *mut Handle) -> i32;
    group_add_member: fn(Handle, Handle, *const c_char, u8, *const c_char) -> i32;
    array_alloc: fn(Handle, *const c_char, *mut Handle) -> i32;
    array_open: fn(Handle, Handle, u32) -> i32;
    array_close: fn(Handle, Handle) -> i32;
    array_free: fn(*mut Handle);
    array_get_metadata: fn(Handle, Handle, *const c_char, *mut u32, *mut u32, *mut *const c_void) -> i32;
    array_get_schema: fn(Handle, Handle, *mut Handle) -> i32;
    array_get_non_empty_domain_from_index: fn(Handle, Handle, u32, *mut c_void, *mut i32) -> i32;
    array_get_enumeration: fn(Handle, Handle, *const c_char, *mut Handle) -> i32;
    array_schema_free: fn(*mut Handle);
    array_schema_get_array_type: fn(Handle, Handle, *mut u32) -> i32;
    array_schema_get_attribute_num: fn(Handle, Handle, *mut u32) -> i32;
    array_schema_get_attribute_from_index: fn(Handle, Handle, u32, *mut Handle) -> i32;
    array_schema_get_domain: fn(Handle, Handle, *mut Handle) -> i32;
    attribute_get_name: fn(Handle, Handle, *mut *const c_char) -> i32;
    attribute_get_type: fn(Handle, Handle, *mut u32) -> i32;
    attribute_get_enumeration_name: fn(Handle, Handle, *mut Handle) -> i32;
    attribute_free: fn(*mut Handle);
    domain_get_ndim: fn(Handle, Handle, *mut u32) -> i32;
    domain_get_dimension_from_index: fn(Handle, Handle, u32, *mut Handle) -> i32;
    domain_free: fn(*mut Handle);
    dimension_get_name: fn(Handle, Handle, *mut *const c_char) -> i32;
    dimension_get_type: fn(Handle, Handle, *mut u32) -> i32;
    dimension_free: fn(*mut Handle);
    enumeration_get_data: fn(Handle, Handle, *mut *const c_void, *mut u64) -> i32;
    enumeration_get_offsets: fn(Handle, Handle, *mut *const c_void, *mut u64) -> i32;
    enumeration_free: fn(*mut Handle);
    query_alloc: fn(Handle, Handle, u32, *mut Handle) -> i32;
    query_set_layout: fn(Handle, Handle, u32) -> i32;
    query_get_default_channel: fn(Handle, Handle, *mut Handle) -> i32;
    aggregate_count_get: fn(Handle, *mut *const c_void) -> i32;
    channel_apply_aggregate: fn(Handle, Handle, *const c_char, *const c_void) -> i32;
    query_channel_free: fn(Handle, *mut Handle) -> i32;
    query_set_data_buffer: fn(Handle, Handle, *const c_char, *mut c_void, *mut u64) -> i32;
    query_submit: fn(Handle, Handle) -> i32;
    query_get_status: fn(Handle, Handle, *mut i32) -> i32;
    query_free: fn(*mut Handle);
});

const TILEDB_OK: i32 = 0;
const TILEDB_READ: u32 = 0;
const TILEDB_UNORDERED: u32 = 3;
const TILEDB_SPARSE: u32 = 1;
const TILEDB_COMPLETED: i32 = 1;
const TILEDB_INT64: u32 = 1;

static API: OnceLock<Result<Api, String>> = OnceLock::new();

/// The loaded library (loaded once per process).
fn api() -> Result<&'static Api, LibraryMissing> {
    // SAFETY: loading runs TileDB's C++ static constructors; the table is
    // TileDB's C API (2.x).
    API.get_or_init(|| unsafe { open(LIBRARY_VAR, "libtiledb.so", Api::load) })
        .as_ref()
        .map_err(|e| LibraryMissing(e.clone()))
}

/// The TileDB library's version, e.g. "2.30.0", when one can be loaded.
pub fn library_version() -> Result<String, LibraryMissing> {
    let api = api()?;
    let (mut major, mut minor, mut rev) = (0, 0, 0);
    // SAFETY: three out-parameters.
    unsafe { (api.version)(&mut major, &mut minor, &mut rev) };
    Ok(format!("{major}.{minor}.{rev}"))
}

/// A member of a group: its name in the group, its URI, array or group.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub uri: String,
    pub kind: Kind,
}

/// What is at a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Group,
    Array,
    Nothing,
}

impl Kind {
    fn from_c(t: i32) -> Kind {
        match t {
            1 => Kind::Group,
            2 => Kind::Array,
            _ => Kind::Nothing,
        }
    }
}

/// An attribute or dimension of an array: its name, TileDB datatype name
/// (INT64, STRING_UTF8, …) and, for attributes with one, the enumeration's
/// string values (pandas categoricals are stored so).
#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    pub datatype: String,
    pub enumeration: Option<Vec<String>>,
}

/// A TileDB context: the handle every call goes through.
pub struct Ctx {
    api: &'static Api,
    raw: Handle,
}

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: allocated by ctx_alloc, freed once.
        unsafe { (self.api.ctx_free)(&mut self.raw) }
    }
}

impl Ctx {
    pub fn new() -> anyhow::Result<Ctx> {
        let api = api()?;
        let mut raw = null_mut();
        // SAFETY: a null config gives the defaults.
        if unsafe { (api.ctx_alloc)(null_mut(), &mut raw) } != TILEDB_OK || raw.is_null() {
            anyhow::bail!("TileDB could not make a context");
        }
        Ok(Ctx { api, raw })
    }

    /// Turn a call's status into a result with TileDB's message.
    fn check(&self, rc: i32, what: &str) -> anyhow::Result<()> {
        if rc == TILEDB_OK {
            return Ok(());
        }
        let mut err = null_mut();
        let mut message = String::from("no message");
        // SAFETY: the error handle is ours to free; its message lives until then.
        unsafe {
            if (self.api.ctx_get_last_error)(self.raw, &mut err) == TILEDB_OK && !err.is_null() {
                let mut text: *const c_char = std::ptr::null();
                if (self.api.error_message)(err, &mut text) == TILEDB_OK && !text.is_null() {
                    message = CStr::from_ptr(text).to_string_lossy().into_owned();
                }
                (self.api.error_free)(&mut err);
            }
        }
        anyhow::bail!("TileDB: {what}: {message}")
    }

    /// Whether a URI holds a group, an array or neither.
    pub fn kind(&self, uri: &str) -> anyhow::Result<Kind> {
        let c = cstring(uri)?;
        let mut t = 0;
        // SAFETY: valid context and NUL-terminated path.
        self.check(
            unsafe { (self.api.object_type)(self.raw, c.as_ptr(), &mut t) },
            uri,
        )?;
        Ok(Kind::from_c(t))
    }

    /// Open a group for reading.
    pub fn group(&self, uri: &str) -> anyhow::Result<Group<'_>> {
        let c = cstring(uri)?;
        let mut raw = null_mut();
        // SAFETY: raw is freed by Group's Drop once allocated.
        self.check(
            unsafe { (self.api.group_alloc)(self.raw, c.as_ptr(), &mut raw) },
            uri,
        )?;
        let group = Group { ctx: self, raw };
        self.check(
            unsafe { (self.api.group_open)(self.raw, raw, TILEDB_READ) },
            uri,
        )?;
        Ok(group)
    }

    /// Open an array for reading.
    pub fn array(&self, uri: &str) -> anyhow::Result<Array<'_>> {
        let c = cstring(uri)?;
        let mut raw = null_mut();
        // SAFETY: raw is freed by Array's Drop once allocated.
        self.check(
            unsafe { (self.api.array_alloc)(self.raw, c.as_ptr(), &mut raw) },
            uri,
        )?;
        let mut array = Array {
            ctx: self,
            raw,
            schema: null_mut(),
            uri: uri.to_string(),
        };
        self.check(
            unsafe { (self.api.array_open)(self.raw, raw, TILEDB_READ) },
            uri,
        )?;
        let mut schema = null_mut();
        self.check(
            unsafe { (self.api.array_get_schema)(self.raw, raw, &mut schema) },
            uri,
        )?;
        array.schema = schema;
        Ok(array)
    }

    /// Add a member to a group (tests build hostile experiments with it).
    #[cfg(test)]
    pub fn add_member(&self, group_uri: &str, member_uri: &str, name: &str) -> anyhow::Result<()> {
        const TILEDB_WRITE: u32 = 1;
        let (g, m, n) = (cstring(group_uri)?, cstring(member_uri)?, cstring(name)?);
        let mut raw = null_mut();
        self.check(
            unsafe { (self.api.group_alloc)(self.raw, g.as_ptr(), &mut raw) },
            group_uri,
        )?;
        let group = Group { ctx: self, raw };
        self.check(
            unsafe { (self.api.group_open)(self.raw, raw, TILEDB_WRITE) },
            group_uri,
        )?;
        self.check(
            unsafe { (self.api.group_add_member)(self.raw, raw, m.as_ptr(), 0, n.as_ptr()) },
            member_uri,
        )?;
        // (Closing writes the member: Group's Drop.)
        drop(group);
        Ok(())
    }

    /// Copy a TileDB string handle's text and free the handle.
    fn take_string(&self, mut s: Handle) -> anyhow::Result<String> {
        if s.is_null() {
            return Ok(String::new());
        }
        let mut data: *const c_char = std::ptr::null();
        let mut len = 0usize;
        // SAFETY: the view is valid until the handle is freed, after the copy.
        let rc = unsafe { (self.api.string_view)(s, &mut data, &mut len) };
        let text = if rc == TILEDB_OK && !data.is_null() {
            let bytes = unsafe { std::slice::from_raw_parts(data as *const u8, len) };
            String::from_utf8_lossy(bytes).into_owned()
        } else {
            String::new()
        };
        unsafe { (self.api.string_free)(&mut s) };
        Ok(text)
    }

    fn datatype_name(&self, t: u32) -> String {
        let mut s: *const c_char = std::ptr::null();
        // SAFETY: a static string owned by the library.
        if unsafe { (self.api.datatype_to_str)(t, &mut s) } == TILEDB_OK && !s.is_null() {
            unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
        } else {
            format!("datatype {t}")
        }
    }
}

/// A metadata value read as text (SOMA keeps its object types as strings).
/// # Safety
/// `value` points at `num` values of `datatype` or is null.
unsafe fn metadata_text(datatype: u32, num: u32, value: *const c_void) -> Option<String> {
    // CHAR, STRING_ASCII, STRING_UTF8: one byte per value (13 and 14 are
    // UTF-16 and UTF-32, not read as text).
    const STRING_TYPES: [u32; 3] = [4, 11, 12];
    if value.is_null() || !STRING_TYPES.contains(&datatype) {
        return None;
    }
    let bytes = unsafe { std::slice::from_raw_parts(value as *const u8, num as usize) };
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// An open group.
pub struct Group<'c> {
    ctx: &'c Ctx,
    raw: Handle,
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        // SAFETY: closing an unopened group is a no-op; freed once.
        unsafe {
            (self.ctx.api.group_close)(self.ctx.raw, self.raw);
            (self.ctx.api.group_free)(&mut self.raw);
        }
    }
}

impl Group<'_> {
    /// A metadata value as text (None: no such key, or not text).
    pub fn metadata(&self, key: &str) -> anyhow::Result<Option<String>> {
        let c = cstring(key)?;
        let (mut t, mut n, mut v) = (0u32, 0u32, std::ptr::null());
        let api = self.ctx.api;
        // SAFETY: out-parameters; the value lives as long as the open group.
        self.ctx.check(
            unsafe {
                (api.group_get_metadata)(self.ctx.raw, self.raw, c.as_ptr(), &mut t, &mut n, &mut v)
            },
            key,
        )?;
        Ok(unsafe { metadata_text(t, n, v) })
    }

    /// The group's members in their stored order.
    pub fn members(&self) -> anyhow::Result<Vec<Member>> {
        let api = self.ctx.api;
        let mut count = 0u64;
        self.ctx.check(
            unsafe { (api.group_get_member_count)(self.ctx.raw, self.raw, &mut count) },
            "group members",
        )?;
        let mut members = Vec::with_capacity(count as usize);
        for i in 0..count {
            let (mut uri, mut kind, mut name) = (null_mut(), 0i32, null_mut());
            // SAFETY: both strings are ours to free (take_string does).
            self.ctx.check(
                unsafe {
                    (api.group_get_member_by_index_v2)(
                        self.ctx.raw,
                        self.raw,
                        i,
                        &mut uri,
                        &mut kind,
                        &mut name,
                    )
                },
                "group member",
            )?;
            let uri = self.ctx.take_string(uri)?;
            let name = self.ctx.take_string(name)?;
            members.push(Member {
                name,
                uri,
                kind: Kind::from_c(kind),
            });
        }
        Ok(members)
    }
}

/// An open array with its schema.
pub struct Array<'c> {
    ctx: &'c Ctx,
    raw: Handle,
    schema: Handle,
    uri: String,
}

impl Drop for Array<'_> {
    fn drop(&mut self) {
        // SAFETY: each handle freed once; null handles are skipped by TileDB.
        unsafe {
            if !self.schema.is_null() {
                (self.ctx.api.array_schema_free)(&mut self.schema);
            }
            (self.ctx.api.array_close)(self.ctx.raw, self.raw);
            (self.ctx.api.array_free)(&mut self.raw);
        }
    }
}

impl Array<'_> {
    fn check(&self, rc: i32, what: &str) -> anyhow::Result<()> {
        self.ctx.check(rc, &format!("{}: {what}", self.uri))
    }

    /// A metadata value as text (None: no such key, or not text).
    pub fn metadata(&self, key: &str) -> anyhow::Result<Option<String>> {
        let c = cstring(key)?;
        let (mut t, mut n, mut v) = (0u32, 0u32, std::ptr::null());
        let api = self.ctx.api;
        self.check(
            unsafe {
                (api.array_get_metadata)(self.ctx.raw, self.raw, c.as_ptr(), &mut t, &mut n, &mut v)
            },
            key,
        )?;
        Ok(unsafe { metadata_text(t, n, v) })
    }

    pub fn is_sparse(&self) -> anyhow::Result<bool> {
        let mut t = 0u32;
        self.check(
            unsafe {
                (self.ctx.api.array_schema_get_array_type)(self.ctx.raw, self.schema, &mut t)
            },
            "array type",
        )?;
        Ok(t == TILEDB_SPARSE)
    }

    /// The dimensions, in order.
    pub fn dimensions(&self) -> anyhow::Result<Vec<Field>> {
        let api = self.ctx.api;
        let mut domain = null_mut();
        self.check(
            unsafe { (api.array_schema_get_domain)(self.ctx.raw, self.schema, &mut domain) },
            "domain",
        )?;
        let mut ndim = 0u32;
        let mut out = Vec::new();
        let result = (|| {
            self.check(
                unsafe { (api.domain_get_ndim)(self.ctx.raw, domain, &mut ndim) },
                "dimensions",
            )?;
            for i in 0..ndim {
                let mut dim = null_mut();
                self.check(
                    unsafe {
                        (api.domain_get_dimension_from_index)(self.ctx.raw, domain, i, &mut dim)
                    },
                    "dimension",
                )?;
                let (mut name, mut t) = (std::ptr::null(), 0u32);
                let named = unsafe { (api.dimension_get_name)(self.ctx.raw, dim, &mut name) };
                let typed = unsafe { (api.dimension_get_type)(self.ctx.raw, dim, &mut t) };
                let field = (named == TILEDB_OK && typed == TILEDB_OK).then(|| Field {
                    name: unsafe { CStr::from_ptr(name) }
                        .to_string_lossy()
                        .into_owned(),
                    datatype: self.ctx.datatype_name(t),
                    enumeration: None,
                });
                unsafe { (api.dimension_free)(&mut dim) };
                out.push(
                    field
                        .ok_or_else(|| anyhow::anyhow!("{}: unreadable dimension {i}", self.uri))?,
                );
            }
            Ok(())
        })();
        unsafe { (api.domain_free)(&mut domain) };
        result.map(|()| out)
    }

    /// The attributes, in order, with the string values of their enumerations.
    pub fn attributes(&self) -> anyhow::Result<Vec<Field>> {
        let api = self.ctx.api;
        let mut n = 0u32;
        self.check(
            unsafe { (api.array_schema_get_attribute_num)(self.ctx.raw, self.schema, &mut n) },
            "attributes",
        )?;
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n {
            let mut attr = null_mut();
            self.check(
                unsafe {
                    (api.array_schema_get_attribute_from_index)(
                        self.ctx.raw,
                        self.schema,
                        i,
                        &mut attr,
                    )
                },
                "attribute",
            )?;
            let field = self.attribute(attr);
            unsafe { (api.attribute_free)(&mut attr) };
            out.push(field?);
        }
        Ok(out)
    }

    fn attribute(&self, attr: Handle) -> anyhow::Result<Field> {
        let api = self.ctx.api;
        let (mut name, mut t, mut enum_name) = (std::ptr::null(), 0u32, null_mut());
        self.check(
            unsafe { (api.attribute_get_name)(self.ctx.raw, attr, &mut name) },
            "attribute name",
        )?;
        let name = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        self.check(
            unsafe { (api.attribute_get_type)(self.ctx.raw, attr, &mut t) },
            &name,
        )?;
        self.check(
            unsafe { (api.attribute_get_enumeration_name)(self.ctx.raw, attr, &mut enum_name) },
            &name,
        )?;
        let enumeration = if enum_name.is_null() {
            None
        } else {
            let enum_name = self.ctx.take_string(enum_name)?;
            self.enumeration_values(&enum_name)?
        };
        Ok(Field {
            name,
            datatype: self.ctx.datatype_name(t),
            enumeration,
        })
    }

    /// The values of a string enumeration (None for one of numbers).
    fn enumeration_values(&self, name: &str) -> anyhow::Result<Option<Vec<String>>> {
        let api = self.ctx.api;
        let c = cstring(name)?;
        let mut e = null_mut();
        self.check(
            unsafe { (api.array_get_enumeration)(self.ctx.raw, self.raw, c.as_ptr(), &mut e) },
            name,
        )?;
        let (mut data, mut data_size) = (std::ptr::null(), 0u64);
        let (mut offsets, mut offsets_size) = (std::ptr::null(), 0u64);
        let values = (|| {
            self.check(
                unsafe { (api.enumeration_get_data)(self.ctx.raw, e, &mut data, &mut data_size) },
                name,
            )?;
            self.check(
                unsafe {
                    (api.enumeration_get_offsets)(self.ctx.raw, e, &mut offsets, &mut offsets_size)
                },
                name,
            )?;
            if offsets.is_null() || offsets_size == 0 {
                return Ok(None);
            }
            // SAFETY: the buffers belong to the enumeration, alive until freed below.
            let bytes: &[u8] = if data.is_null() {
                &[]
            } else {
                unsafe { std::slice::from_raw_parts(data as *const u8, data_size as usize) }
            };
            // (The offsets are u64 values; read bytewise: no alignment assumed.)
            let offset_bytes =
                unsafe { std::slice::from_raw_parts(offsets as *const u8, offsets_size as usize) };
            let starts: Vec<u64> = offset_bytes
                .chunks_exact(8)
                .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
                .collect();
            let mut values = Vec::with_capacity(starts.len());
            for (i, &start) in starts.iter().enumerate() {
                let end = starts.get(i + 1).copied().unwrap_or(data_size);
                let slice = bytes.get(start as usize..end as usize).ok_or_else(|| {
                    anyhow::anyhow!("{}: enumeration {name} is corrupt", self.uri)
                })?;
                values.push(String::from_utf8_lossy(slice).into_owned());
            }
            Ok(Some(values))
        })();
        unsafe { (api.enumeration_free)(&mut e) };
        values
    }

    /// The non-empty domain of an INT64 dimension: [lo, hi], None when empty.
    pub fn non_empty_i64(&self, index: u32) -> anyhow::Result<Option<[i64; 2]>> {
        let dims = self.dimensions()?;
        let dim = dims
            .get(index as usize)
            .ok_or_else(|| anyhow::anyhow!("{}: no dimension {index}", self.uri))?;
        if self.ctx.datatype_name(TILEDB_INT64) != dim.datatype {
            anyhow::bail!(
                "{}: dimension {} is {}, not INT64",
                self.uri,
                dim.name,
                dim.datatype
            );
        }
        let mut range = [0i64; 2];
        let mut empty = 0i32;
        self.check(
            unsafe {
                (self.ctx.api.array_get_non_empty_domain_from_index)(
                    self.ctx.raw,
                    self.raw,
                    index,
                    range.as_mut_ptr() as *mut c_void,
                    &mut empty,
                )
            },
            "non-empty domain",
        )?;
        Ok((empty == 0).then_some(range))
    }

    /// The number of cells (rows of a dataframe, stored values of a sparse
    /// array), counted by TileDB's COUNT aggregate without reading them out.
    pub fn count(&self) -> anyhow::Result<u64> {
        let api = self.ctx.api;
        let ctx = self.ctx.raw;
        let mut query = null_mut();
        self.check(
            unsafe { (api.query_alloc)(ctx, self.raw, TILEDB_READ, &mut query) },
            "count",
        )?;
        let mut channel = null_mut();
        let mut count = 0u64;
        let result = (|| {
            self.check(
                unsafe { (api.query_set_layout)(ctx, query, TILEDB_UNORDERED) },
                "count",
            )?;
            self.check(
                unsafe { (api.query_get_default_channel)(ctx, query, &mut channel) },
                "count",
            )?;
            let mut op = std::ptr::null();
            self.check(unsafe { (api.aggregate_count_get)(ctx, &mut op) }, "count")?;
            let field = c"Count";
            self.check(
                unsafe { (api.channel_apply_aggregate)(ctx, channel, field.as_ptr(), op) },
                "count",
            )?;
            let mut size = 8u64;
            self.check(
                unsafe {
                    (api.query_set_data_buffer)(
                        ctx,
                        query,
                        field.as_ptr(),
                        &mut count as *mut u64 as *mut c_void,
                        &mut size,
                    )
                },
                "count",
            )?;
            self.check(unsafe { (api.query_submit)(ctx, query) }, "count")?;
            let mut status = 0i32;
            self.check(
                unsafe { (api.query_get_status)(ctx, query, &mut status) },
                "count",
            )?;
            if status != TILEDB_COMPLETED {
                anyhow::bail!("{}: counting did not complete (status {status})", self.uri);
            }
            Ok(count)
        })();
        unsafe {
            if !channel.is_null() {
                (api.query_channel_free)(ctx, &mut channel);
            }
            (api.query_free)(&mut query);
        }
        result
    }
}

fn cstring(s: &str) -> anyhow::Result<CString> {
    CString::new(s).map_err(|_| anyhow::anyhow!("{s:?} holds a NUL byte"))
}
