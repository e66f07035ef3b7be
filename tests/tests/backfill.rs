//! Batched backfills (`-- migrate:batch N`, issue 12 part 3): the UPDATE
//! runs over key ranges, one short transaction per batch, while another
//! process keeps writing; a run killed half-way resumes after its last
//! committed batch; bad input is refused at build time with the line.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Event, Migration, Migrator};
use tests::{Package, pg_database};

/// The table, and the backfill: `n = n + 1` on every `old` row, so a row
/// updated twice shows `n = 2` and a row missed `n = 0`.
const ITEMS: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0, hits INTEGER NOT NULL DEFAULT 0);\n";
const FILL: &str = "-- migrate:batch 1000\n-- Every old row once.\nUPDATE items SET n = n + 1 WHERE kind = 'old';\n";

/// A migrations directory with the table and the backfill, and its
/// migrations as the runtime applies them.
fn migrations(items: &str) -> (tempfile::TempDir, Vec<Migration>) {
    let dir = tests::migrations_dir(&[("0001_items.sql", items), ("0002_fill_n.sql", FILL)]);
    let mut config = migrate_build::Config::default();
    config.dir = dir.path().file_name().unwrap().into();
    let loaded = migrate_build::load(dir.path().parent().unwrap(), &config).expect("the migrations load");
    let ms = loaded
        .migrations
        .iter()
        .map(migrate_build::scan::Found::to_migration)
        .collect();
    (dir, ms)
}

fn worker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_migrate-worker"))
}

/// A WAL database at the table's migration with `rows` old rows.
fn sqlite_db(path: &std::path::Path, ms: &[Migration], rows: u64) -> Connection {
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    Migrator::new(ms).migrate_to(&mut conn, 1).unwrap();
    conn.execute(
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < ?1) \
         INSERT INTO items (kind) SELECT 'old' FROM r",
        [rows],
    )
    .unwrap();
    conn
}

/// Starts the other writer on `db` (a file or a URL) and waits until it writes.
fn start_writer(db: &str) -> Child {
    let mut child = worker()
        .args(["--writer", db])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the writer");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    std::thread::sleep(Duration::from_millis(200));
    child
}

/// What the writer did: (writes, inserted, hits, longest wait in ms).
fn stop_writer(mut child: Child) -> (u64, u64, u64, u64) {
    std::thread::sleep(Duration::from_millis(200));
    drop(child.stdin.take());
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success(), "the writer failed: {out}");
    let words: Vec<&str> = out.split_whitespace().collect();
    let num = |name: &str| -> u64 {
        let at = words
            .iter()
            .position(|w| *w == name)
            .unwrap_or_else(|| panic!("{name} in {out}"));
        words[at + 1].parse().unwrap()
    };
    (num("writes"), num("inserted"), num("hits"), num("max_wait_ms"))
}

/// The backfill events of a run: (done, total, updated, batches).
type Seen = std::cell::RefCell<Vec<(u64, u64, u64, u64)>>;

fn watch(seen: &Seen) -> impl Fn(&Event<'_>) + '_ {
    move |e| {
        if let Event::Backfill {
            rows_done,
            rows_total,
            rows_updated,
            batches,
            ..
        } = e
        {
            seen.borrow_mut()
                .push((*rows_done, *rows_total, *rows_updated, *batches));
        }
    }
}

fn count(conn: &Connection, sql: &str) -> u64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Checks the rows after a complete backfill of `old` old rows, with
/// `inserted` new rows and `hits` hits written by the other process.
fn check_rows(conn: &Connection, old: u64, inserted: u64, hits: u64) {
    assert_eq!(count(conn, "SELECT count(*) FROM items WHERE kind = 'old'"), old);
    assert_eq!(
        count(conn, "SELECT count(*) FROM items WHERE kind = 'old' AND n <> 1"),
        0,
        "every old row updated exactly once"
    );
    assert_eq!(count(conn, "SELECT count(*) FROM items WHERE kind = 'new'"), inserted);
    assert_eq!(
        count(conn, "SELECT count(*) FROM items WHERE kind = 'new' AND n <> 0"),
        0
    );
    assert_eq!(
        count(conn, "SELECT coalesce(sum(hits), 0) FROM items"),
        hits,
        "no write of the writer lost"
    );
}

/// The requirement: 1,000,000 rows backfilled on a WAL database file
/// while another process inserts and updates rows; none of its writes
/// waits more than 250 ms, and every row is updated exactly once.
#[test]
fn sqlite_backfill_of_a_million_rows_lets_another_process_write() {
    const ROWS: u64 = 1_000_000;
    let (dir, ms) = migrations(ITEMS);
    let path = dir.path().with_extension("db");
    let mut conn = sqlite_db(&path, &ms, ROWS);
    let writer = start_writer(path.to_str().unwrap());
    let seen = Seen::default();
    let start = Instant::now();
    let report = Migrator::new(&ms).on_event(watch(&seen)).apply(&mut conn).unwrap();
    let took = start.elapsed();
    let (writes, inserted, hits, max_wait) = stop_writer(writer);
    eprintln!(
        "backfill of {ROWS} rows: {took:?}, {} batches; the writer made {writes} writes, the longest waited {max_wait} ms",
        seen.borrow().len() - 1
    );
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [2]);
    assert!(max_wait <= 250, "a write of the other process waited {max_wait} ms");
    assert!(writes > 100, "the writer wrote during the backfill: {writes}");
    check_rows(&conn, ROWS, inserted, hits);
    let seen = seen.borrow();
    let (first, last) = (seen[0], seen[seen.len() - 1]);
    assert_eq!((first.0, first.2, first.3), (0, 0, 0), "{first:?}");
    assert!(first.1 >= ROWS, "{first:?}");
    assert_eq!(last.0, last.1, "every row of the range walked: {last:?}");
    assert_eq!(last.2, ROWS, "{last:?}");
    assert!(last.3 >= ROWS / 1000, "{last:?}");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM _migrations_backfill"),
        0,
        "the progress is cleared with the tracking row"
    );
}

/// A run killed (SIGKILL) half-way leaves its committed batches and their
/// progress; the next run resumes after the last one, redoing none.
#[test]
fn sqlite_backfill_killed_half_way_resumes_after_the_last_batch() {
    const ROWS: u64 = 200_000;
    let (dir, ms) = migrations(ITEMS);
    let path = dir.path().with_extension("db");
    let conn = sqlite_db(&path, &ms, ROWS);
    let run = || {
        worker()
            .args([dir.path().to_str().unwrap(), path.to_str().unwrap(), "--progress"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = run();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    // Killed once it reported its 50th batch (it may have gone on a little).
    for line in lines.by_ref() {
        if line.unwrap().starts_with("batch 50 ") {
            break;
        }
    }
    first.kill().unwrap();
    first.wait().unwrap();

    let (last_key, walked, batches): (i64, u64, u64) = conn
        .query_row(
            "SELECT last_key, rows_walked, batches FROM _migrations_backfill WHERE version = 2",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(
        (50..ROWS / 1000).contains(&batches),
        "killed half-way: {batches} batches"
    );
    assert_eq!(walked, batches * 1000);
    let updated = count(&conn, "SELECT count(*) FROM items WHERE n = 1");
    assert_eq!(updated, walked, "exactly the committed batches are done");
    assert_eq!(
        count(&conn, "SELECT max(id) FROM items WHERE n = 1"),
        u64::try_from(last_key).unwrap()
    );
    assert!(
        tests::applied_versions(&conn) == [1],
        "not recorded before its last batch"
    );

    let resumed = run().wait_with_output().unwrap();
    let out = String::from_utf8(resumed.stdout).unwrap();
    assert!(resumed.status.success(), "{out}");
    let progress: Vec<&str> = out.lines().filter(|l| l.starts_with("batch ")).collect();
    assert_eq!(
        progress[0],
        format!("batch {batches} {walked}/{ROWS} {walked}"),
        "the resumed run starts where the killed one stopped"
    );
    assert_eq!(progress.len() as u64, ROWS / 1000 - batches + 1, "{out}");
    assert!(out.contains("applied 2"), "{out}");
    check_rows(&conn, ROWS, 0, 0);
    assert_eq!(tests::applied_versions(&conn), [1, 2]);
}
