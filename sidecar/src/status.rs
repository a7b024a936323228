use crate::cli::StatusArgs;
use crate::db;

/// Print the versions of the client, the extension and the server.
pub async fn run(args: StatusArgs) -> anyhow::Result<()> {
    let client = db::connect(&args.db.database_url).await?;
    let row = client
        .query_one(
            "SELECT lamin.version(), current_setting('server_version'), current_database(), current_user",
            &[],
        )
        .await?;
    println!("connected to {}", db::redact(&args.db.database_url));
    println!("lamin CLI        {}", lamin_core::VERSION);
    println!("lamin extension  {}", row.get::<_, String>(0));
    println!("postgres         {}", row.get::<_, String>(1));
    println!("database         {}", row.get::<_, String>(2));
    println!("user             {}", row.get::<_, String>(3));
    Ok(())
}
