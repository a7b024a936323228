//! `lamin status`: prints what `lamin_sidecar::status` gathers.

use lamin_core::compat;

use lamin_sidecar::db;
use lamin_sidecar::status::{status, Status};

use super::StatusArgs;

/// Print the versions of the CLI, the extension (installed, offered by the
/// server, the loaded library), the sidecars connected to the database, the
/// server, and the caller's jobs not finished yet (imports with their
/// progress). Fails (after printing) when this CLI does not speak the
/// installed extension, so scripts can use it as a check.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let client = db::connect(&args.db.database_url).await?;
    let Status {
        found,
        server_version,
        user,
        library,
        sidecars,
        instance,
        jobs,
        unfinished_jobs,
        standby,
        server_address,
    } = status(&client).await?;
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
    for name in &sidecars {
        let rest = name.trim_start_matches(db::SIDECAR_APPLICATION);
        let (version, worker) = rest.split_once(' ').unwrap_or((rest, "?"));
        let note = if compat::SPOKEN.contains(&version) {
            ""
        } else {
            " (another release than this CLI)"
        };
        println!("sidecar          {version} {worker}{note}");
    }
    println!("postgres         {server_version}");
    let at = server_address
        .map(|a| format!(" at {a}"))
        .unwrap_or_default();
    match standby {
        None => println!("server           primary (read-write){at}"),
        Some(replayed) => println!(
            "server           hot standby (read-only{}){at}: reads work here, writes go to the primary",
            replayed
                .map(|bytes| format!("; {bytes} bytes received and not yet replayed"))
                .unwrap_or_default()
        ),
    }
    println!("database         {}", found.database);
    if let Some((name, uid)) = &instance {
        println!("instance         {name} (uid {uid})");
    }
    println!("user             {user}");
    if unfinished_jobs == 0 {
        println!("jobs             none queued or running (yours)");
    } else {
        let running = jobs.iter().filter(|j| j.status == "running").count();
        println!(
            "jobs             {unfinished_jobs} not finished (yours; {running} running): SELECT * FROM lamin.jobs"
        );
    }
    for job in &jobs {
        let subject = job
            .subject
            .as_deref()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        let stage = job
            .stage
            .as_deref()
            .map(|s| format!(", {s}"))
            .unwrap_or_default();
        let progress = job
            .progress_pct
            .map(|p| format!(", {p:.1} %"))
            .unwrap_or_default();
        println!(
            "  job {:<10}   {}{subject}: {}{stage}{progress}",
            job.id, job.kind, job.status
        );
    }
    compat::check(&found)?;
    Ok(())
}
