//! A process that applies a migrations directory to a database, as an app
//! does at start-up: used by the concurrency and crash tests.
//!
//! `migrate-worker DIR DB [--lock-timeout SECS] [--grouped] [--wal]
//! [--max-pages N]`, or `migrate-worker DIR --postgres URL [--lock-timeout
//! SECS] [--grouped] [--lock table] [--schema NAME]`: prints
//! `waited MS` when it had to wait for another process, `applied V` for each
//! migration it applied, and `error: …` (exit 1) on failure.
//!
//! `migrate-worker --interrupted-write DB`: begins a write transaction on DB
//! (rollback journal) big enough that SQLite writes pages to the database
//! file before the commit, prints `writing` and waits to be killed: SIGKILL
//! leaves a hot journal, as a crash in the middle of a migration does.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use migrate_build::Config;
use migrate_runtime::Migrator;
use migrate_runtime::rusqlite::Connection;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, db] = args.as_slice()
        && flag == "--interrupted-write"
    {
        return interrupted_write(db);
    }
    let (Some(dir), Some(db)) = (args.first(), args.get(1)) else {
        eprintln!("usage: migrate-worker DIR DB [--lock-timeout SECS] [--grouped]");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    let timeout = args
        .iter()
        .position(|a| a == "--lock-timeout")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(migrate_runtime::DEFAULT_LOCK_TIMEOUT, Duration::from_secs_f64);
    let grouped = args.iter().any(|a| a == "--grouped");
    let package = dir.parent().map(PathBuf::from).unwrap_or_default();
    let mut config = Config::default();
    config.dir = dir.file_name().map(PathBuf::from).unwrap_or_default();
    let found = match migrate_build::load(&package, &config) {
        Ok(loaded) => loaded.migrations,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let migrations: Vec<_> = found.iter().map(migrate_build::scan::Found::to_migration).collect();
    let mut migrator = Migrator::new(&migrations).lock_timeout(timeout).grouped(grouped);
    if db == "--postgres" {
        let option = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
        if option("--lock").is_some_and(|l| l == "table") {
            migrator = migrator.lock(migrate_runtime::Lock::Table);
        }
        if let Some(schema) = option("--schema") {
            migrator = migrator.schema(schema);
        }
        let url = args.get(2).map_or("", String::as_str);
        let mut client = match migrate_runtime::postgres::Client::connect(url, migrate_runtime::postgres::NoTls) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: cannot connect to {url}: {e}");
                return ExitCode::FAILURE;
            }
        };
        return report(migrator.apply_postgres(&mut client));
    }
    let mut conn = match Connection::open(db) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot open {db}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.iter().any(|a| a == "--wal")
        && let Err(e) = conn.execute_batch("PRAGMA journal_mode = WAL")
    {
        eprintln!("error: cannot switch {db} to WAL: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(pages) = args
        .iter()
        .position(|a| a == "--max-pages")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse::<i64>().ok())
    {
        let _ = conn.pragma_update(None, "max_page_count", pages);
    }
    report(migrator.apply(&mut conn))
}

fn report(result: migrate_runtime::Result<migrate_runtime::Report>) -> ExitCode {
    match result {
        Ok(report) => {
            if let Some(w) = report.waited {
                println!("waited {}", w.as_millis());
            }
            for s in report.applied() {
                println!("applied {}", s.version);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to `db` without committing, and waits to be killed.
fn interrupted_write(db: &str) -> ExitCode {
    let write = || -> migrate_runtime::rusqlite::Result<()> {
        let conn = Connection::open(db)?;
        // A small cache makes SQLite spill changed pages into the database
        // file (after syncing the journal) before the commit.
        conn.execute_batch(
            "PRAGMA journal_mode = DELETE; PRAGMA cache_size = 4;
             CREATE TABLE IF NOT EXISTS interrupted (x BLOB);
             BEGIN;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO interrupted SELECT randomblob(1000) FROM n;",
        )?;
        println!("writing");
        std::io::Write::flush(&mut std::io::stdout()).ok();
        std::thread::sleep(Duration::from_secs(600));
        Ok(())
    };
    match write() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
