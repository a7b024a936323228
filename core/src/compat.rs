//! Which extension versions this lamin (sidecar, CLI) speaks, and what to say
//! when it meets another one. A release's binaries speak exactly that
//! release's SQL: the queue functions, the job arguments and the registries'
//! columns they use change between releases, and a sidecar that guessed could
//! half-run a job against a schema it does not know.

use std::cmp::Ordering;
use std::fmt;

/// The extension versions this build speaks.
pub const SPOKEN: &[&str] = &[crate::VERSION];

/// What a client (CLI verb, sidecar) found in the database it connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// `pg_extension.extversion` of `lamin` in this database; None: not installed.
    pub installed: Option<String>,
    /// The newest version the server's installed package offers
    /// (`pg_available_extensions.default_version`); None: no package.
    pub available: Option<String>,
    /// The database's name, for messages.
    pub database: String,
}

/// Why a client refuses a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `CREATE EXTENSION lamin` has not been run in this database.
    NotInstalled { database: String },
    /// The schema is older than this client: `ALTER EXTENSION lamin UPDATE`
    /// (and, if `available` is older too, the new release on the server first).
    Older {
        database: String,
        installed: String,
        available: Option<String>,
    },
    /// The schema is newer than this client (or not comparable): use the
    /// binaries of the schema's release.
    Newer { database: String, installed: String },
}

impl std::error::Error for Refusal {}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let me = crate::VERSION;
        match self {
            Refusal::NotInstalled { database } => write!(
                f,
                "database {database:?} has no lamin extension: run CREATE EXTENSION lamin CASCADE there as a superuser"
            ),
            Refusal::Older {
                database,
                installed,
                available,
            } => {
                write!(
                    f,
                    "database {database:?} has lamin extension {installed}, but this lamin {me} speaks only {}: ",
                    SPOKEN.join(", ")
                )?;
                match available {
                    Some(a) if compare(a, me) != Some(Ordering::Less) => write!(
                        f,
                        "upgrade it with ALTER EXTENSION lamin UPDATE as a superuser (scripts/up does it for the local instance; README \"Upgrading\")"
                    ),
                    _ => write!(
                        f,
                        "install the lamin {me} extension on the server first (the server offers {}), then run ALTER EXTENSION lamin UPDATE (README \"Upgrading\")",
                        available.as_deref().unwrap_or("none")
                    ),
                }
            }
            Refusal::Newer {
                database,
                installed,
            } => write!(
                f,
                "database {database:?} has lamin extension {installed}, but this lamin {me} speaks only {}: use the lamin binary of release {installed}",
                SPOKEN.join(", ")
            ),
        }
    }
}

/// Whether this build may use the database; the refusal says why not and
/// what to do.
pub fn check(found: &Found) -> Result<(), Refusal> {
    let database = found.database.clone();
    let Some(installed) = found.installed.clone() else {
        return Err(Refusal::NotInstalled { database });
    };
    if SPOKEN.contains(&installed.as_str()) {
        return Ok(());
    }
    match compare(&installed, crate::VERSION) {
        Some(Ordering::Less) => Err(Refusal::Older {
            database,
            installed,
            available: found.available.clone(),
        }),
        _ => Err(Refusal::Newer {
            database,
            installed,
        }),
    }
}

/// Whether `ALTER EXTENSION lamin UPDATE` would move the schema on: the
/// server offers a newer version than the installed one.
pub fn upgrade_pending(found: &Found) -> bool {
    match (&found.installed, &found.available) {
        (Some(i), Some(a)) => compare(i, a) == Some(Ordering::Less),
        _ => false,
    }
}

/// Compare two release versions (`MAJOR.MINOR.PATCH`, numbers compared as
/// numbers); None when either is not of that form.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    fn parts(v: &str) -> Option<Vec<u64>> {
        v.split('.').map(|p| p.parse().ok()).collect()
    }
    Some(parts(a)?.cmp(&parts(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(installed: Option<&str>, available: Option<&str>) -> Found {
        Found {
            installed: installed.map(String::from),
            available: available.map(String::from),
            database: "lamin".into(),
        }
    }

    #[test]
    fn the_own_version_is_spoken() {
        assert_eq!(
            check(&found(Some(crate::VERSION), Some(crate::VERSION))),
            Ok(())
        );
    }

    #[test]
    fn an_older_schema_asks_for_alter_extension_update() {
        let e = check(&found(Some("0.0.1"), Some(crate::VERSION))).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, Refusal::Older { .. }));
        assert!(msg.contains("lamin extension 0.0.1"), "{msg}");
        assert!(
            msg.contains(&format!("this lamin {}", crate::VERSION)),
            "{msg}"
        );
        assert!(msg.contains("ALTER EXTENSION lamin UPDATE"), "{msg}");
        assert!(!msg.contains("install the lamin"), "{msg}");
    }

    #[test]
    fn an_older_server_package_asks_for_the_new_release_on_the_server_first() {
        let msg = check(&found(Some("0.0.1"), Some("0.0.1")))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&format!(
                "install the lamin {} extension on the server first",
                crate::VERSION
            )),
            "{msg}"
        );
        assert!(msg.contains("the server offers 0.0.1"), "{msg}");
    }

    #[test]
    fn a_newer_schema_asks_for_the_newer_binary() {
        let e = check(&found(Some("99.0.0"), Some("99.0.0"))).unwrap_err();
        assert!(matches!(e, Refusal::Newer { .. }));
        assert!(
            e.to_string()
                .contains("use the lamin binary of release 99.0.0"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_extension_says_create_extension() {
        let msg = check(&found(None, Some("0.2.0"))).unwrap_err().to_string();
        assert!(msg.contains("CREATE EXTENSION lamin CASCADE"), "{msg}");
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert_eq!(compare("0.10.0", "0.9.1"), Some(Ordering::Greater));
        assert_eq!(compare("0.2.0", "0.2.0"), Some(Ordering::Equal));
        assert_eq!(compare("1.0.0-rc1", "1.0.0"), None);
        assert!(upgrade_pending(&found(Some("0.1.0"), Some("0.2.0"))));
        assert!(!upgrade_pending(&found(Some("0.2.0"), Some("0.2.0"))));
        assert!(!upgrade_pending(&found(None, Some("0.2.0"))));
    }
}
