//! The `lamin` Postgres extension: pgrx glue around the pure logic in `lamin-core`
//! and the hand-written schema in `sql/`.

::pgrx::pg_module_magic!(name, version);

mod errors;
mod keys;
mod reads;
mod schema;
mod search;
mod storage;
mod uid;
mod users;
mod version;

/// Runs when a backend loads the library. Errors reach users as messages,
/// never with a Rust backtrace (it shows internals): pgrx's panic hook
/// captures one whenever the server's environment allows it (a postmaster
/// started from a shell with RUST_BACKTRACE=1), and RUST_LIB_BACKTRACE=0
/// turns that off for this process whatever RUST_BACKTRACE says.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    users::watch_user_table();
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn version_matches_the_crate() {
        let v = Spi::get_one::<String>("SELECT lamin.version()")
            .unwrap()
            .unwrap();
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
    }

    #[pg_test]
    fn library_version_is_the_crate_and_version_the_installed_sql() {
        let lib = Spi::get_one::<String>("SELECT lamin.library_version()")
            .unwrap()
            .unwrap();
        assert_eq!(lib, env!("CARGO_PKG_VERSION"));
        let installed = Spi::get_one::<String>(
            "SELECT extversion::text FROM pg_extension WHERE extname = 'lamin'",
        )
        .unwrap()
        .unwrap();
        let v = Spi::get_one::<String>("SELECT lamin.version()")
            .unwrap()
            .unwrap();
        assert_eq!(v, installed);
    }

    #[pg_test]
    fn uid_default_fills_storage_uid() {
        let uid = Spi::get_one::<String>(
            "INSERT INTO lamin.storage (root, type) VALUES ('/tmp/pgtest-root', 'local') RETURNING uid",
        )
        .unwrap()
        .unwrap();
        assert_eq!(uid.len(), 12);
        assert!(uid.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[pg_test(
        error = "invalid key \"a/../b\": key has a '..' path segment; '.' and '..' are not allowed"
    )]
    fn check_key_refuses_dot_dot() {
        Spi::run("SELECT lamin.check_key('a/../b')").unwrap();
    }

    #[pg_test]
    fn version_counters_round_trip_through_sql() {
        let s = Spi::get_one::<String>("SELECT lamin.version_suffix(62)")
            .unwrap()
            .unwrap();
        assert_eq!(s, "0010");
        let n = Spi::get_one::<i32>("SELECT lamin.version_number('zzzz')")
            .unwrap()
            .unwrap();
        assert_eq!(n, 62i32.pow(4) - 1);
    }

    #[pg_test(
        error = "version number 14776336 is outside 0..62^4: the family has too many versions"
    )]
    fn version_suffix_overflow_is_an_error() {
        Spi::run("SELECT lamin.version_suffix(14776336)").unwrap();
    }

    #[pg_test]
    fn suffix_from_key_keeps_compound_suffixes() {
        let s = Spi::get_one::<String>("SELECT lamin.suffix_from_key('a/b.ome.zarr')")
            .unwrap()
            .unwrap();
        assert_eq!(s, ".ome.zarr");
    }

    #[pg_test]
    fn search_ranks_exact_name_before_synonym_and_finds_typos() {
        Spi::run(
            "INSERT INTO lamin.ulabel (name, synonyms) VALUES
                 ('T cell', '{T lymphocyte}'), ('thymus-derived cell', '{T cell}'), ('macrophage', '{}')",
        )
        .unwrap();
        let first = Spi::get_one::<String>(
            "SELECT name FROM lamin.search('t cell', 'lamin.ulabel') LIMIT 1",
        )
        .unwrap();
        assert_eq!(first.as_deref(), Some("T cell"));
        let second = Spi::get_one::<String>(
            "SELECT matched FROM lamin.search('t cell', 'lamin.ulabel') OFFSET 1 LIMIT 1",
        )
        .unwrap();
        assert_eq!(second.as_deref(), Some("synonym: T cell"));
        let typo =
            Spi::get_one::<String>("SELECT name FROM lamin.search('macrophge') LIMIT 1").unwrap();
        assert_eq!(typo.as_deref(), Some("macrophage"));
    }

    #[pg_test]
    fn standardize_maps_case_and_synonyms() {
        Spi::run("INSERT INTO lamin.ulabel (name, synonyms) VALUES ('B cell', '{B lymphocyte}')")
            .unwrap();
        let out = Spi::get_one::<Vec<Option<String>>>(
            "SELECT lamin.standardize('lamin.ulabel', ARRAY['b cell', 'B lymphocyte', 'other', NULL])",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            out,
            vec![
                Some("B cell".into()),
                Some("B cell".into()),
                Some("other".into()),
                None
            ]
        );
    }

    #[pg_test]
    fn term_kinds_are_shared_with_sql() {
        for kind in lamin_core::rank::TermKind::ALL {
            let code =
                Spi::get_one_with_args::<i16>("SELECT lamin.term_kind($1)", &[kind.name().into()])
                    .unwrap()
                    .unwrap();
            assert_eq!(code, kind.code());
            let name =
                Spi::get_one_with_args::<String>("SELECT lamin.term_kind_name($1)", &[code.into()])
                    .unwrap()
                    .unwrap();
            assert_eq!(name, kind.name());
        }
        let none = Spi::get_one::<String>("SELECT lamin.term_kind_name(4::smallint)").unwrap();
        assert_eq!(none, None);
    }

    #[pg_test(error = "unknown term kind 'abbr': the kinds are name, synonym, abbreviation, id")]
    fn term_kind_refuses_unknown_names() {
        Spi::run("SELECT lamin.term_kind('abbr')").unwrap();
    }

    #[pg_test(error = "search query must not be NULL")]
    fn search_refuses_null() {
        Spi::run("SELECT * FROM lamin.search(NULL)").unwrap();
    }

    #[pg_test(error = "uid length must be between 1 and 64, got 0")]
    fn uid_refuses_silly_lengths() {
        Spi::run("SELECT lamin.uid(0)").unwrap();
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
