//! New instances, the instances of a server, and instance names as URLs.
//!
//! A new instance is a database cloned from the server's template database
//! (`lamin_template`, which `scripts/up` fills once with the extension and
//! the default ontologies): `CREATE DATABASE … TEMPLATE … STRATEGY
//! FILE_COPY` copies its files, seconds instead of the minutes of importing
//! the ontologies again. Then `lamin.init_instance` gives the copy its own
//! identity and default storage.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_postgres::Client;

use crate::db;
use crate::refused;
use lamin_core::sql::quote_ident;

/// The template database a server's new instances are cloned from.
pub const TEMPLATE: &str = "lamin_template";

/// What `init` makes.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// Any database on the server, to connect to (the caller needs CREATEDB).
    pub server_url: String,
    /// The new instance's (and database's) name.
    pub name: String,
    /// The default storage root of the new instance.
    pub storage: Option<String>,
    pub description: Option<String>,
    /// The template database; when missing on the server, the new instance
    /// gets the extension alone (no ontologies).
    pub template: String,
    /// Copy the template even while its default imports are unfinished
    /// (scripts/up does for the instance `lamin`, which it fills itself).
    pub incomplete_template: bool,
}

#[derive(Debug, Clone)]
pub struct Created {
    pub name: String,
    pub uid: String,
    pub url: String,
    /// Whether it was cloned from the template (else: the extension alone).
    pub from_template: bool,
    pub elapsed: Duration,
}

/// One instance of a server.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub uid: Option<String>,
    pub version: String,
    /// Artifacts the caller can read.
    pub artifacts: i64,
    pub bytes: i64,
    pub is_template: bool,
}

/// Instance names: lowercase letters, digits and `_`, starting with a letter
/// (the rule of `lamin.instance.name`; checked here before CREATE DATABASE).
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(refused!(
            "invalid instance name {name:?}: use lowercase letters, digits and _ (at most 63, starting with a letter)"
        ))
    }
}

/// The connection URL of database `dbname` on the server of `url` (a
/// postgresql:// URL or a key=value connection string).
pub fn with_database(url: &str, dbname: &str) -> anyhow::Result<String> {
    if url.starts_with("postgresql://") || url.starts_with("postgres://") {
        let mut parsed =
            url::Url::parse(url).with_context(|| format!("invalid URL {}", db::redact(url)))?;
        parsed.set_path(&format!("/{dbname}"));
        return Ok(parsed.to_string());
    }
    let mut parts: Vec<String> = url
        .split_whitespace()
        .filter(|p| !p.starts_with("dbname="))
        .map(str::to_string)
        .collect();
    parts.push(format!("dbname={dbname}"));
    Ok(parts.join(" "))
}

/// A URL as given, or an instance name resolved on the server of `base`.
pub fn resolve(name_or_url: &str, base: Option<&str>) -> anyhow::Result<String> {
    if name_or_url.contains("://") || name_or_url.contains('=') {
        return Ok(name_or_url.to_string());
    }
    check_name(name_or_url)?;
    let base = base.ok_or_else(|| {
        refused!("{name_or_url:?} is an instance name, and no DATABASE_URL says which server it is on: give a URL, or set DATABASE_URL")
    })?;
    with_database(base, name_or_url)
}

/// Whether the server has a database of this name.
async fn database_exists(server: &Client, name: &str) -> anyhow::Result<bool> {
    Ok(server
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = $1)",
            &[&name],
        )
        .await?
        .get(0))
}

/// The session name scripts/fill-defaults holds the template open with while
/// it imports the default sources into it.
pub const TEMPLATE_FILL_SESSION: &str = "lamin-template-fill";

/// How the template's database comment begins from the moment scripts/up
/// starts the default imports until scripts/fill-defaults has put them into
/// the template too. Unlike the session above it outlasts a failed or
/// stopped import, after which the template holds only some of them.
pub const TEMPLATE_INCOMPLETE: &str = "lamin: default sources incomplete";

/// Why the template must not be copied now, if it must not.
async fn template_unfinished(
    server: &Client,
    template: &str,
) -> anyhow::Result<Option<&'static str>> {
    let row = server
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND application_name = $2),
                    coalesce(pg_catalog.starts_with(pg_catalog.shobj_description(d.oid, 'pg_database'), $3), false)
             FROM pg_catalog.pg_database d WHERE d.datname = $1",
            &[&template, &TEMPLATE_FILL_SESSION, &TEMPLATE_INCOMPLETE],
        )
        .await?;
    Ok(if row.get(0) {
        Some("is being filled with the default ontologies right now (a first scripts/up imports them in the background, about 10 minutes: .lamin/imports.log)")
    } else if row.get(1) {
        Some("does not hold all the default ontologies yet: scripts/up imports them in the background, into the instance lamin first (.lamin/imports.log), and should that import have stopped, the next scripts/up resumes it")
    } else {
        None
    })
}

/// Make a new instance (see the module's comment). Nothing is left behind
/// when a step fails: the new database is dropped again.
pub async fn init(req: &InitRequest) -> anyhow::Result<Created> {
    check_name(&req.name)?;
    let started = Instant::now();
    let server = db::connect(&req.server_url).await?;
    if database_exists(&server, &req.name).await? {
        return Err(refused!(
            "database {} exists on this server already: lamin connect {} to use it, or choose another name",
            req.name,
            req.name
        ));
    }
    let has_template = database_exists(&server, &req.template).await?;
    if has_template && !req.incomplete_template {
        if let Some(why) = template_unfinished(&server, &req.template).await? {
            return Err(refused!(
                "the template database {} {why}; a copy now would hold only some of them: run lamin init again when they are in, or add --incomplete-template to copy it as it is",
                req.template
            ));
        }
    }
    let create = if has_template {
        // FILE_COPY: the template's files are copied after a checkpoint;
        // WAL_LOG (the default) would write the whole template through the WAL.
        format!(
            "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
            quote_ident(&req.name),
            quote_ident(&req.template)
        )
    } else {
        format!("CREATE DATABASE {}", quote_ident(&req.name))
    };
    server.batch_execute(&create).await.map_err(|e| {
        let e = anyhow::Error::new(crate::error::DbError(e));
        if has_template {
            e.context(format!(
                "cannot clone the template database {} (no session may be connected to it while it is copied)",
                req.template
            ))
        } else {
            e.context(format!("cannot create database {}", req.name))
        }
    })?;
    let url = with_database(&req.server_url, &req.name)?;
    match set_up(&url, req, has_template).await {
        Ok(uid) => Ok(Created {
            name: req.name.clone(),
            uid,
            url,
            from_template: has_template,
            elapsed: started.elapsed(),
        }),
        Err(e) => {
            // (Sessions to the new database are closed by now.)
            let _ = server
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&req.name)
                ))
                .await;
            Err(e)
        }
    }
}

/// In the new database: the extension (created, or brought up to the
/// server's release when the template is older), then the identity.
async fn set_up(url: &str, req: &InitRequest, from_template: bool) -> anyhow::Result<String> {
    let client = db::connect(url).await?;
    client
        .batch_execute("SET client_min_messages = warning")
        .await?;
    let found = db::handshake(&client).await?;
    match (found.installed.as_deref(), found.available.as_deref()) {
        (None, _) => client
            .batch_execute("CREATE EXTENSION lamin CASCADE")
            .await
            .map_err(crate::error::DbError)
            .context("cannot create the lamin extension in the new database")?,
        (Some(installed), Some(available)) if installed != available => {
            client
                .batch_execute(
                    "ALTER EXTENSION lamin UPDATE; SELECT lamin.refresh_search_triggers()",
                )
                .await
                .map_err(crate::error::DbError)
                .with_context(|| {
                    format!("cannot upgrade the template's lamin {installed} to {available}")
                })?;
        }
        _ => {}
    }
    db::check_version(&client).await?;
    let row = client
        .query_one(
            "SELECT (lamin.init_instance($1, $2, $3)).uid",
            &[&req.name, &req.storage, &req.description],
        )
        .await
        .map_err(crate::error::DbError)?;
    if !from_template {
        tracing::warn!(
            "no template database {} on this server: instance {} has no ontologies (scripts/up keeps a template; or import them: lamin import ontology)",
            req.template,
            req.name
        );
    }
    Ok(row.get(0))
}

/// The lamin instances of the server of `server_url` the caller may connect
/// to, by name (the template last).
pub async fn list(server_url: &str) -> anyhow::Result<Vec<Instance>> {
    let server = db::connect(server_url).await?;
    let rows = server
        .query(
            "SELECT datname::text, datistemplate, pg_catalog.pg_database_size(oid), datallowconn
             FROM pg_catalog.pg_database
             WHERE (datallowconn AND pg_catalog.has_database_privilege(datname, 'CONNECT')
                    AND datname NOT IN ('template0', 'template1'))
                OR datname = $1
             ORDER BY datname = $1, datname",
            &[&TEMPLATE],
        )
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        if !row.get::<_, bool>(3) {
            // The template takes no connections (so that it can be cloned at any time).
            out.push(Instance {
                name,
                uid: None,
                version: "-".into(),
                artifacts: 0,
                bytes: row.get(2),
                is_template: true,
            });
            continue;
        }
        let Ok(client) = db::connect(&with_database(server_url, &name)?).await else {
            continue;
        };
        let is_template = row.get::<_, bool>(1) || name == TEMPLATE;
        if let Some(instance) = describe(&client, name, is_template, row.get(2)).await? {
            out.push(instance);
        }
    }
    Ok(out)
}

async fn describe(
    client: &Client,
    name: String,
    is_template: bool,
    bytes: i64,
) -> anyhow::Result<Option<Instance>> {
    let version: Option<String> = client
        .query_one(
            "SELECT (SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'lamin')",
            &[],
        )
        .await?
        .get(0);
    let Some(version) = version else {
        return Ok(None);
    };
    // The identity as stored (a template has none: it is never initialised).
    let row = client
        .query_one(
            "SELECT (SELECT i.uid FROM lamin.instance i), (SELECT count(*) FROM lamin.artifact)",
            &[],
        )
        .await;
    let (uid, artifacts) = match row {
        Ok(r) => (r.get(0), r.get(1)),
        // An instance of a release before 0.8.0 has no lamin.instance.
        Err(_) => (None, 0),
    };
    Ok(Some(Instance {
        name,
        uid,
        version,
        artifacts,
        bytes,
        is_template,
    }))
}

#[cfg(test)]
mod tests {
    use super::{check_name, resolve, with_database};

    #[test]
    fn instance_names_are_lowercase_identifiers() {
        assert!(check_name("lab_b2").is_ok());
        for bad in ["", "Lab", "2lab", "lab-b", "lab b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_name_is_a_database_on_the_base_server() {
        assert_eq!(
            with_database(
                "postgresql://me:pw@127.0.0.1:28815/lamin?sslmode=disable",
                "lab_b"
            )
            .unwrap(),
            "postgresql://me:pw@127.0.0.1:28815/lab_b?sslmode=disable"
        );
        assert_eq!(
            with_database("host=a port=5 dbname=lamin user=me", "lab_b").unwrap(),
            "host=a port=5 user=me dbname=lab_b"
        );
        assert_eq!(
            resolve("lab_b", Some("postgresql://h/lamin")).unwrap(),
            "postgresql://h/lab_b"
        );
        // A URL stays as given; a name needs a server.
        assert_eq!(
            resolve("postgresql://x/y", None).unwrap(),
            "postgresql://x/y"
        );
        assert!(resolve("lab_b", None).is_err());
    }
}
