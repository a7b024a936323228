//! Errors of the library, and whether a failed piece of work is worth another
//! attempt, decided from the types in an error's chain (SQLSTATE classes,
//! object_store error kinds, I/O error kinds), never from its text.
//!
//! Work functions return `anyhow::Result` whose chain holds these typed
//! sources; context added on the way only adds words.

use tokio_postgres::error::SqlState;

/// What to do when a write reached a server that cannot write.
pub const READ_ONLY_HINT: &str = "the server of DATABASE_URL is read-only (a hot standby, or default_transaction_read_only): writes go to the primary, which a DATABASE_URL listing every host with target_session_attrs=read-write reaches";

/// A database error shown as the server's message (what a user needs),
/// keeping the error itself for its SQLSTATE.
#[derive(Debug)]
pub struct DbError(pub tokio_postgres::Error);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_db_error() {
            // The server's hint says what to do (e.g. which grant is
            // missing): it belongs with the message.
            Some(d) => match d.hint() {
                Some(hint) => write!(f, "{} (hint: {hint})", d.message()),
                // A write that reached a hot standby: Postgres says only
                // "cannot execute INSERT in a read-only transaction".
                None if d.code() == &SqlState::READ_ONLY_SQL_TRANSACTION => {
                    write!(f, "{} (hint: {READ_ONLY_HINT})", d.message())
                }
                None => f.write_str(d.message()),
            },
            None => write!(f, "{}", self.0),
        }
    }
}

// No `source()`: the message is the whole story, and a chain printed with
// `{:#}` would repeat it.
impl std::error::Error for DbError {}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError(e)
    }
}

impl DbError {
    /// The SQLSTATE, when the server answered with an error.
    pub fn code(&self) -> Option<&SqlState> {
        self.0.code()
    }
}

/// A request the library refuses by its own rules (an argument, a missing
/// record, a state that does not allow it): it fails the same way again.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// A member of an AnnData's `layers`, `obsm`, … (or its X) that is not a
/// matrix of numbers — a dataframe in `obsm`, text, an array of three
/// dimensions —: anndata allows them; a slice leaves them out and says so
/// (and refuses such an X).
#[derive(Debug, thiserror::Error)]
#[error("{path} is {what}, not a matrix of numbers")]
pub struct NotAMatrix {
    pub path: String,
    pub what: String,
}

/// `Err(Refused(..))` as an `anyhow::Error`, formatted like `anyhow!`.
#[macro_export]
macro_rules! refused {
    ($($arg:tt)*) => {
        ::anyhow::Error::new($crate::error::Refused(format!($($arg)*)))
    };
}

/// A storage root that cannot be opened (bad URL, bad settings).
#[derive(Debug, thiserror::Error)]
#[error("cannot open storage {root}")]
pub struct StorageUnusable {
    pub root: String,
    #[source]
    pub source: object_store::Error,
}

/// Whether a failed piece of work may succeed when tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A network hiccup, a server restarting, a conflict: try again later.
    Retry,
    /// Bad input, a refusal, a missing object: it will fail the same way.
    Permanent,
}

/// The disposition of an error: the outermost typed error in its chain
/// decides; an error with no known type is permanent (retrying a bug or a
/// rule only repeats it).
pub fn disposition(e: &anyhow::Error) -> Disposition {
    for cause in e.chain() {
        if let Some(d) = disposition_of(cause) {
            return d;
        }
    }
    Disposition::Permanent
}

fn disposition_of(cause: &(dyn std::error::Error + 'static)) -> Option<Disposition> {
    use Disposition::*;
    if cause.is::<Refused>()
        || cause.is::<StorageUnusable>()
        || cause.is::<lamin_core::compat::Refusal>()
    {
        return Some(Permanent);
    }
    if let Some(e) = cause.downcast_ref::<DbError>() {
        return Some(postgres(&e.0));
    }
    if let Some(e) = cause.downcast_ref::<tokio_postgres::Error>() {
        return Some(postgres(e));
    }
    if let Some(e) = cause.downcast_ref::<object_store::Error>() {
        return Some(object_store(e));
    }
    if let Some(e) = cause.downcast_ref::<std::io::Error>() {
        return Some(io(e.kind()));
    }
    None
}

/// Postgres: no answer at all (connection lost), or a SQLSTATE of a class
/// that passes (connection exception 08, transaction rollback 40 —
/// serialization failures and deadlocks —, insufficient resources 53,
/// operator intervention 57 — shutdown, cancel —, system error 58, lock not
/// available) is retried; everything else (syntax, privileges, constraints,
/// raised exceptions) is permanent.
pub fn postgres(e: &tokio_postgres::Error) -> Disposition {
    let Some(code) = e.code() else {
        return Disposition::Retry;
    };
    let class = &code.code()[..2];
    if matches!(class, "08" | "40" | "53" | "57" | "58") || *code == SqlState::LOCK_NOT_AVAILABLE {
        Disposition::Retry
    } else {
        Disposition::Permanent
    }
}

/// object_store: what the store says about the object or our rights stays
/// so; transport and server errors (its `Generic`) pass.
pub fn object_store(e: &object_store::Error) -> Disposition {
    use object_store::Error::*;
    match e {
        NotFound { .. }
        | PermissionDenied { .. }
        | Unauthenticated { .. }
        | UnknownConfigurationKey { .. }
        | NotSupported { .. }
        | NotImplemented
        | InvalidPath { .. }
        | AlreadyExists { .. }
        | Precondition { .. }
        | NotModified { .. } => Disposition::Permanent,
        _ => Disposition::Retry,
    }
}

/// Local I/O: missing files, refused access and bad data stay so; a full
/// disk, interrupted or timed-out transfers may pass.
pub fn io(kind: std::io::ErrorKind) -> Disposition {
    use std::io::ErrorKind::*;
    match kind {
        NotFound | PermissionDenied | InvalidInput | InvalidData | AlreadyExists | Unsupported
        | IsADirectory | NotADirectory | DirectoryNotEmpty | ReadOnlyFilesystem
        | InvalidFilename => Disposition::Permanent,
        _ => Disposition::Retry,
    }
}

/// Whether an error chain holds object_store's NotFound (an object that is not there).
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<object_store::Error>(),
            Some(object_store::Error::NotFound { .. })
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outermost_typed_cause_decides() {
        let missing = anyhow::Error::new(object_store::Error::NotFound {
            path: "x".into(),
            source: "gone".into(),
        })
        .context("cannot read x");
        assert_eq!(disposition(&missing), Disposition::Permanent);
        assert!(is_not_found(&missing));
        let network = anyhow::Error::new(object_store::Error::Generic {
            store: "S3",
            source: "connection reset".into(),
        });
        assert_eq!(disposition(&network), Disposition::Retry);
        let unusable = anyhow::Error::new(StorageUnusable {
            root: "s3://b".into(),
            source: object_store::Error::Generic {
                store: "S3",
                source: "bad region".into(),
            },
        });
        assert_eq!(disposition(&unusable), Disposition::Permanent);
        assert_eq!(
            disposition(&refused!("no artifact with uid {:?}", "x")),
            Disposition::Permanent
        );
        assert_eq!(
            disposition(&anyhow::anyhow!("untyped")),
            Disposition::Permanent
        );
        let timeout = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert_eq!(disposition(&timeout), Disposition::Retry);
        let no_file = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(disposition(&no_file), Disposition::Permanent);
    }

    #[test]
    fn refusals_read_as_their_message() {
        let e = refused!("argument {} missing", "uid").context("job 3");
        assert_eq!(format!("{e:#}"), "job 3: argument uid missing");
    }
}
