//! A sqlx app migrating through its own pool (feature `sqlx`).
use migrate_runtime::sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use migrate_runtime::{Migration, Migrator, Script};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = SqliteConnectOptions::new().filename("app.db").create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await?;
    // An app with a `migrations/` directory has these from `migrate-build`:
    // `migrations::migrator().apply_sqlx_sqlite(&mut conn)`.
    let migrations = [Migration::new(
        1,
        "create_users",
        Script::new(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
            "migrations/0001_create_users.sql",
        ),
    )];
    let mut conn = pool.acquire().await?;
    let report = Migrator::new(&migrations).apply_sqlx_sqlite(&mut conn).await?;
    eprint!("{report}");
    drop(conn);
    migrate_runtime::sqlx::query("INSERT INTO users (name) VALUES ('Ada')")
        .execute(&pool)
        .await?;
    Ok(())
}
