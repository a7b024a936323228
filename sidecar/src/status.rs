use lamin_core::compat;

use crate::cli::StatusArgs;
use crate::db;

/// Print the versions of the CLI, the extension (installed, offered by the
/// server, the loaded library), the sidecars connected to the database and
/// the server. Fails (after printing) when this CLI does not speak the
/// installed extension, so scripts can use it as a check.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let client = db::connect(&args.db.database_url).await?;
    let found = db::handshake(&client).await?;
    let row = client
        .query_one(
            "SELECT current_setting('server_version'), current_user::text,
                    to_regprocedure('lamin.library_version()') IS NOT NULL",
            &[],
        )
        .await?;
    // lamin.library_version() exists from 0.2.0 on.
    let library: Option<String> = if row.get::<_, bool>(2) {
        Some(
            client
                .query_one("SELECT lamin.library_version()", &[])
                .await?
                .get(0),
        )
    } else {
        None
    };
    // Each sidecar names its connections `lamin-sidecar/{version} {worker}`.
    let sidecars = client
        .query(
            "SELECT DISTINCT application_name::text FROM pg_catalog.pg_stat_activity
             WHERE datname = current_database() AND application_name LIKE $1 || '%'
             ORDER BY 1",
            &[&db::SIDECAR_APPLICATION],
        )
        .await?;
    println!("connected to {}", db::redact(&args.db.database_url));
    println!("lamin CLI        {}", lamin_core::VERSION);
    let installed = found.installed.as_deref().unwrap_or("not installed");
    let library = library
        .map(|l| format!(", library {l}"))
        .unwrap_or_default();
    let offered = found.available.as_deref().unwrap_or("none");
    println!("lamin extension  {installed} (server offers {offered}{library})");
    if compat::upgrade_pending(&found) {
        println!(
            "upgrade          pending: {installed} -> {offered}; run ALTER EXTENSION lamin UPDATE as a superuser (scripts/up does it)"
        );
    } else {
        println!("upgrade          none pending");
    }
    if sidecars.is_empty() {
        println!("sidecars         none connected");
    }
    for s in &sidecars {
        let name: String = s.get(0);
        let rest = name.trim_start_matches(db::SIDECAR_APPLICATION);
        let (version, worker) = rest.split_once(' ').unwrap_or((rest, "?"));
        let note = if compat::SPOKEN.contains(&version) {
            ""
        } else {
            " (another release than this CLI)"
        };
        println!("sidecar          {version} {worker}{note}");
    }
    println!("postgres         {}", row.get::<_, String>(0));
    println!("database         {}", found.database);
    println!("user             {}", row.get::<_, String>(1));
    compat::check(&found)?;
    Ok(())
}
