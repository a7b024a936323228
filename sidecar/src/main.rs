//! `lamin`: the sidecar daemon and the client CLI.

mod anndata;
mod backoff;
mod cat;
mod cli;
mod daemon;
mod db;
mod files;
mod import;
mod jobs;
mod logging;
mod status;
mod storage;
mod storage_jobs;
mod tabular;
mod warehouse;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    // The daemon names its connections after its worker name instead.
    let verb = match &command {
        Command::Daemon(_) => None,
        Command::Status(_) => Some("status"),
        Command::Import(_) => Some("import"),
        Command::Save(_) => Some("save"),
        Command::Get(_) => Some("get"),
        Command::Cat(_) => Some("cat"),
    };
    if let Some(verb) = verb {
        db::set_application_name(format!("lamin/{} {verb}", lamin_core::VERSION));
    }
    match command {
        Command::Daemon(args) => daemon::run(args).await,
        Command::Status(args) => status::run(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Save(args) => files::save(args).await.map(|_| ()),
        Command::Get(args) => files::get(args).await,
        Command::Cat(args) => cat::run(args).await,
    }
}
