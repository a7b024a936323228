//! C libraries the sidecar loads at run time to read formats no Rust crate
//! reads (TileDB for TileDB-SOMA, DuckDB): one place for how a library is
//! found — the path in an environment variable, else the system's name for
//! it — and how its functions are declared, so that the sidecar builds and
//! runs without them.

use libloading::Library;

/// Declares a table of C functions, each looked up as `$prefix<name>`, with
/// `load` (unsafe: the library must have these signatures) and the library
/// kept loaded beside the pointers.
macro_rules! c_api {
    ($prefix:literal { $($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)* }) => {
        // (Functions only tests call are declared as well.)
        #[allow(dead_code)]
        struct Api {
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
            /// Kept loaded for as long as the pointers above are used (forever).
            _library: libloading::Library,
        }

        impl Api {
            /// # Safety
            /// `library` must export these functions with these signatures.
            unsafe fn load(library: libloading::Library) -> Result<Api, libloading::Error> {
                Ok(Api {
                    $($name: *unsafe {
                        library.get(concat!($prefix, stringify!($name), "\0").as_bytes())
                    }?,)*
                    _library: library,
                })
            }
        }
    };
}
pub(crate) use c_api;

/// Open the library named by the environment variable `var` (a path), else
/// by `default` on the system's library path, and look up its functions with
/// `load`. The error names what was tried.
///
/// # Safety
/// Loading runs the library's initialisers, and `load` must match its
/// signatures: callers pass their own library's table.
pub(crate) unsafe fn open<T>(
    var: &str,
    default: &str,
    load: unsafe fn(Library) -> Result<T, libloading::Error>,
) -> Result<T, String> {
    let name = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string());
    unsafe { Library::new(&name).and_then(|l| load(l)) }.map_err(|e| format!("{name}: {e}"))
}
