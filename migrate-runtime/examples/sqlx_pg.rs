//! A sqlx app on PostgreSQL migrating through its own pool (features
//! `postgres` and `sqlx`).
use migrate_runtime::sqlx::postgres::PgPool;
use migrate_runtime::{Migration, Migrator, Script};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")?;
    let pool = PgPool::connect(&url).await?;
    // An app with a `migrations/` directory has these from `migrate-build`:
    // `migrations::migrator().apply_sqlx_pg(&mut conn)`.
    let migrations = [Migration::new(
        1,
        "create_users",
        Script::new(
            "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);",
            "migrations/0001_create_users.sql",
        ),
    )];
    let mut conn = pool.acquire().await?;
    let report = Migrator::new(&migrations).apply_sqlx_pg(&mut conn).await?;
    eprint!("{report}");
    drop(conn);
    migrate_runtime::sqlx::query("INSERT INTO users (name) VALUES ('Ada')")
        .execute(&pool)
        .await?;
    Ok(())
}
