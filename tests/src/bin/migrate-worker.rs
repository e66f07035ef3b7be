//! A process that applies a migrations directory to a database, as an app
//! does at start-up: used by the concurrency and crash tests.
//!
//! `migrate-worker DIR DB [--lock-timeout SECS] [--grouped] [--wal]
//! [--max-pages N]`, or `migrate-worker DIR --postgres URL [--lock-timeout
//! SECS] [--grouped] [--lock table] [--schema NAME]`: prints
//! `waited MS` when it had to wait for another process, `applied V` for each
//! migration it applied, and `error: …` (exit 1) on failure.
//!
//! With `--progress`, prints `batch B DONE/TOTAL UPDATED` for each batch
//! of a batched backfill (`-- migrate:batch N`) as it commits.
//!
//! `migrate-worker --writer DB|URL`: the app's other writer during a
//! backfill of table `items` (`id`, `kind`, `n`, `hits`): until its
//! standard input closes, inserts a `new` row and adds 1 to `hits` of a
//! random `old` row, each write on its own (autocommit), about every
//! millisecond (SQLite: `synchronous = NORMAL`, as apps on WAL set); then prints `writes W inserted I hits H max_wait_ms M`
//! (the longest a write waited, from its start to its commit).
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
    if let [flag, db] = args.as_slice()
        && flag == "--writer"
    {
        return writer(db);
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
    if args.iter().any(|a| a == "--progress") {
        migrator = migrator.on_event(|e| {
            if let migrate_runtime::Event::Backfill {
                rows_done,
                rows_total,
                rows_updated,
                batches,
                ..
            } = e
            {
                println!("batch {batches} {rows_done}/{rows_total} {rows_updated}");
                std::io::Write::flush(&mut std::io::stdout()).ok();
            }
        });
    }
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

/// The other writer of a backfill test (see the module's documentation).
fn writer(db: &str) -> ExitCode {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    let stop = std::sync::Arc::new(AtomicBool::new(false));
    {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            stop.store(true, Ordering::Relaxed);
        });
    }
    // A small xorshift: which row to touch needs no quality.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id());
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut writes, mut inserted, mut hits, mut max_wait) = (0u64, 0u64, 0u64, Duration::ZERO);
    let result: Result<(), String> = if db.starts_with("postgres") {
        (|| {
            let mut client = migrate_runtime::postgres::Client::connect(db, migrate_runtime::postgres::NoTls)
                .map_err(|e| e.to_string())?;
            let old: i64 = client
                .query_one("SELECT count(*) FROM items WHERE kind = 'old'", &[])
                .map_err(|e| e.to_string())?
                .get(0);
            println!("ready");
            std::io::Write::flush(&mut std::io::stdout()).ok();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                client
                    .execute("INSERT INTO items (kind, n, hits) VALUES ('new', 0, 0)", &[])
                    .map_err(|e| e.to_string())?;
                max_wait = max_wait.max(t.elapsed());
                inserted += 1;
                let id = i64::try_from(random() % u64::try_from(old).unwrap_or(1)).unwrap_or(0) + 1;
                let t = Instant::now();
                hits += client
                    .execute(
                        "UPDATE items SET hits = hits + 1 WHERE id = $1 AND kind = 'old'",
                        &[&id],
                    )
                    .map_err(|e| e.to_string())?;
                max_wait = max_wait.max(t.elapsed());
                writes += 2;
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        })()
    } else {
        (|| {
            let conn = Connection::open(db).map_err(|e| e.to_string())?;
            conn.busy_timeout(Duration::from_secs(10)).map_err(|e| e.to_string())?;
            // What apps on WAL set: a commit does not wait for the disk.
            conn.execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(|e| e.to_string())?;
            let old: i64 = conn
                .query_row("SELECT count(*) FROM items WHERE kind = 'old'", [], |r| r.get(0))
                .map_err(|e| e.to_string())?;
            println!("ready");
            std::io::Write::flush(&mut std::io::stdout()).ok();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                conn.execute("INSERT INTO items (kind, n, hits) VALUES ('new', 0, 0)", [])
                    .map_err(|e| e.to_string())?;
                max_wait = max_wait.max(t.elapsed());
                inserted += 1;
                let id = i64::try_from(random() % u64::try_from(old).unwrap_or(1)).unwrap_or(0) + 1;
                let t = Instant::now();
                let changed = conn
                    .execute("UPDATE items SET hits = hits + 1 WHERE id = ?1 AND kind = 'old'", [id])
                    .map_err(|e| e.to_string())?;
                max_wait = max_wait.max(t.elapsed());
                hits += u64::try_from(changed).unwrap_or(0);
                writes += 2;
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        })()
    };
    match result {
        Ok(()) => {
            println!(
                "writes {writes} inserted {inserted} hits {hits} max_wait_ms {}",
                max_wait.as_millis()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
