//! Batched backfills (`-- migrate:batch N`, issue 12 part 3): the UPDATE
//! runs over key ranges, one short transaction per batch, while another
//! process keeps writing; a run killed half-way resumes after its last
//! committed batch; bad input is refused at build time with the line.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Event, Migration, Migrator};
use tests::pg_database;

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

/// A migrator process (`migrate-worker ARGS --progress`), its output piped.
fn migrator_process(args: &[&str]) -> Child {
    worker()
        .args(args)
        .arg("--progress")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a migrator")
}

/// SIGKILLs `child` once it reported batch `n` committed (it may have
/// committed one more meanwhile).
fn kill_after_batch(mut child: Child, n: u64) {
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if line.unwrap().starts_with(&format!("batch {n} ")) {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
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
fn check_rows(count: &mut dyn FnMut(&str) -> u64, old: u64, inserted: u64, hits: u64) {
    assert_eq!(count("SELECT count(*) FROM items WHERE kind = 'old'"), old);
    assert_eq!(
        count("SELECT count(*) FROM items WHERE kind = 'old' AND n <> 1"),
        0,
        "every old row updated exactly once"
    );
    assert_eq!(count("SELECT count(*) FROM items WHERE kind = 'new'"), inserted);
    assert_eq!(count("SELECT count(*) FROM items WHERE kind = 'new' AND n <> 0"), 0);
    assert_eq!(
        count("SELECT coalesce(sum(hits), 0) FROM items"),
        hits,
        "no write of the writer lost"
    );
}

/// [`check_rows`] on SQLite.
fn check_sqlite(conn: &Connection, old: u64, inserted: u64, hits: u64) {
    check_rows(&mut |sql| count(conn, sql), old, inserted, hits);
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
    check_sqlite(&conn, ROWS, inserted, hits);
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
    let run = || migrator_process(&[dir.path().to_str().unwrap(), path.to_str().unwrap()]);
    kill_after_batch(run(), 50);

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
    check_sqlite(&conn, ROWS, 0, 0);
    assert_eq!(tests::applied_versions(&conn), [1, 2]);
}

/// The table on PostgreSQL: an identity primary key, the backfill's key.
const PG_ITEMS: &str = "CREATE TABLE items (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, kind text NOT NULL, n integer NOT NULL DEFAULT 0, hits integer NOT NULL DEFAULT 0);\n";

/// A PostgreSQL database at the table's migration with `rows` old rows.
fn pg_db(client: &mut migrate_runtime::postgres::Client, ms: &[Migration], rows: i64) {
    Migrator::new(ms).migrate_to_postgres(client, 1).unwrap();
    client
        .execute(
            "INSERT INTO items (kind) SELECT 'old' FROM generate_series(1, $1::bigint)",
            &[&rows],
        )
        .unwrap();
}

fn pg_count(client: &mut migrate_runtime::postgres::Client) -> impl FnMut(&str) -> u64 + '_ {
    move |sql: &str| {
        let n: i64 = client
            .query_one(&format!("SELECT ({sql})::bigint"), &[])
            .unwrap()
            .get(0);
        u64::try_from(n).unwrap()
    }
}

/// The requirement on PostgreSQL, against the real server: the backfill
/// walks the primary key in batches while another process inserts and
/// updates; no write waits more than 250 ms, every row is updated once.
#[test]
fn postgres_backfill_lets_another_process_write() {
    const ROWS: u64 = 200_000;
    let Some(db) = pg_database!() else { return };
    let (_dir, ms) = migrations(PG_ITEMS);
    let mut client = db.client();
    pg_db(&mut client, &ms, i64::try_from(ROWS).unwrap());
    let writer = start_writer(&db.url);
    let seen = Seen::default();
    let start = Instant::now();
    let report = Migrator::new(&ms)
        .on_event(watch(&seen))
        .apply_postgres(&mut client)
        .unwrap();
    let took = start.elapsed();
    let (writes, inserted, hits, max_wait) = stop_writer(writer);
    eprintln!(
        "PostgreSQL backfill of {ROWS} rows: {took:?}, {} batches; the writer made {writes} writes, the longest waited {max_wait} ms",
        seen.borrow().len() - 1
    );
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [2]);
    assert!(max_wait <= 250, "a write of the other process waited {max_wait} ms");
    assert!(writes > 100, "the writer wrote during the backfill: {writes}");
    check_rows(&mut pg_count(&mut client), ROWS, inserted, hits);
    let last = *seen.borrow().last().unwrap();
    assert_eq!((last.0, last.2), (last.1, ROWS), "{last:?}");
    assert_eq!(pg_count(&mut client)("SELECT count(*) FROM _migrations_backfill"), 0);
    // The next start: nothing to do, and no drift (the progress table is
    // not part of the schema).
    let again = Migrator::new(&ms)
        .drift(migrate_runtime::DriftPolicy::Error)
        .apply_postgres(&mut client)
        .unwrap();
    assert!(again.steps.is_empty(), "{again:?}");
}

/// PostgreSQL: a migrator process killed half-way; the next run resumes
/// after the last committed batch.
#[test]
fn postgres_backfill_killed_half_way_resumes_after_the_last_batch() {
    const ROWS: u64 = 100_000;
    let Some(db) = pg_database!() else { return };
    let (dir, ms) = migrations(PG_ITEMS);
    let mut client = db.client();
    pg_db(&mut client, &ms, i64::try_from(ROWS).unwrap());
    let run = || migrator_process(&[dir.path().to_str().unwrap(), "--postgres", &db.url]);
    kill_after_batch(run(), 20);
    let row = client
        .query_one(
            "SELECT rows_walked, batches FROM _migrations_backfill WHERE version = 2",
            &[],
        )
        .unwrap();
    let (walked, batches): (i64, i64) = (row.get(0), row.get(1));
    let (walked, batches) = (u64::try_from(walked).unwrap(), u64::try_from(batches).unwrap());
    assert!(
        (20..ROWS / 1000).contains(&batches),
        "killed half-way: {batches} batches"
    );
    assert_eq!(pg_count(&mut client)("SELECT count(*) FROM items WHERE n = 1"), walked);
    assert_eq!(pg_count(&mut client)("SELECT count(*) FROM _migrations"), 1);

    let resumed = run().wait_with_output().unwrap();
    let out = String::from_utf8(resumed.stdout).unwrap();
    assert!(resumed.status.success(), "{out}");
    let first_line = out.lines().find(|l| l.starts_with("batch ")).unwrap_or_default();
    assert_eq!(first_line, format!("batch {batches} {walked}/{ROWS} {walked}"));
    check_rows(&mut pg_count(&mut client), ROWS, 0, 0);
    assert_eq!(pg_count(&mut client)("SELECT count(*) FROM _migrations"), 2);
}

/// The async driver runs the same loop; a table the backfill cannot walk
/// is refused before anything runs, naming the file and line.
#[test]
fn postgres_backfill_on_tokio_postgres_and_a_table_without_an_integer_key() {
    let Some(db) = pg_database!() else { return };
    let (_dir, ms) = migrations(PG_ITEMS);
    let mut sync = db.client();
    pg_db(&mut sync, &ms, 5500);
    let seen = Seen::default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (mut client, connection) =
                migrate_runtime::tokio_postgres::connect(&db.url, migrate_runtime::tokio_postgres::NoTls)
                    .await
                    .unwrap();
            tokio::spawn(async move {
                let _ = connection.await;
            });
            Migrator::new(&ms)
                .on_event(watch(&seen))
                .apply_tokio_postgres(&mut client)
                .await
                .unwrap();
        });
    assert_eq!(
        *seen.borrow(),
        [
            (0, 5500, 0, 0),
            (1000, 5500, 1000, 1),
            (2000, 5500, 2000, 2),
            (3000, 5500, 3000, 3),
            (4000, 5500, 4000, 4),
            (5000, 5500, 5000, 5),
            (5500, 5500, 5500, 6)
        ]
    );
    check_rows(&mut pg_count(&mut sync), 5500, 0, 0);

    let (_dir, ms) =
        migrations("CREATE TABLE items (code text PRIMARY KEY, kind text, n integer NOT NULL DEFAULT 0);\n");
    sync.batch_execute("DROP TABLE items; DROP TABLE _migrations").unwrap();
    let err = Migrator::new(&ms).apply_postgres(&mut sync).unwrap_err();
    assert!(matches!(err, migrate_runtime::Error::Batch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("0002_fill_n.sql:3: migration 2 `fill_n` cannot run in batches (-- migrate:batch): the primary key of `items` is `code` of type text, not an integer; a batched backfill walks the table's primary key in ranges"), "{text}");
    assert_eq!(
        pg_count(&mut sync)("SELECT count(*) FROM _migrations"),
        1,
        "only the table's migration"
    );
}

/// A batch directive on anything but one `UPDATE … WHERE …` of an up-only
/// migration fails `check` (and the build, which runs the same check)
/// with the file, the line and a hint; every problem at once.
#[test]
fn bad_batch_directives_are_path_line_errors_with_a_hint() {
    let pkg = tests::Package::named("backfill-bad");
    let table = "CREATE TABLE items (id INTEGER PRIMARY KEY, kind TEXT, n INTEGER NOT NULL DEFAULT 0);\n";
    let cases: &[(&str, &str)] = &[
        (
            "0002_two_statements.sql",
            "-- migrate:batch 1000\nUPDATE items SET n = 1 WHERE n = 0;\nUPDATE items SET kind = 'x' WHERE kind IS NULL;\n",
        ),
        (
            "0003_a_delete.sql",
            "-- migrate:batch 1000\nDELETE FROM items WHERE n = 0;\n",
        ),
        (
            "0004_no_where.sql",
            "-- migrate:batch 1000\nUPDATE items SET n = n + 1;\n",
        ),
        (
            "0005_zero.sql",
            "-- migrate:batch 0\nUPDATE items SET n = 1 WHERE n = 0;\n",
        ),
        (
            "0006_not_a_number.sql",
            "-- migrate:batch lots\nUPDATE items SET n = 1 WHERE n = 0;\n",
        ),
        (
            "0007_returning.sql",
            "-- migrate:batch 500\nUPDATE items SET n = 1\nWHERE n = 0\nRETURNING id;\n",
        ),
        (
            "0008_transactional.sql",
            "-- migrate:batch 500\nBEGIN;\nUPDATE items SET n = 1 WHERE n = 0;\nCOMMIT;\n",
        ),
        (
            "0009_with_down.up.sql",
            "-- migrate:batch 100\nUPDATE items SET n = 2 WHERE n = 1;\n",
        ),
        ("0009_with_down.down.sql", "UPDATE items SET n = 1 WHERE n = 2;\n"),
        ("0010_batch_in_down.up.sql", "UPDATE items SET n = 3 WHERE n = 2;\n"),
        (
            "0010_batch_in_down.down.sql",
            "-- migrate:batch 100\nUPDATE items SET n = 2 WHERE n = 3;\n",
        ),
        (
            "0011_twice.sql",
            "-- migrate:batch 100\n-- migrate:batch 200\nUPDATE items SET n = 1 WHERE n = 0;\n",
        ),
        (
            "0012_good.sql",
            "-- migrate:batch 100\n-- migrate:no-transaction\nUPDATE items SET n = 1 WHERE n = 0;\n",
        ),
    ];
    let mut files = vec![("0001_items.sql", table)];
    files.extend_from_slice(cases);
    super::lint::migrations(&pkg, &files);
    let text = super::phases::migrate(&pkg, &["check"]);
    insta::assert_snapshot!("backfill_bad_input", text);
    assert!(!text.contains("0012_good"), "{text}");
}

/// `cargo migrate up` says what the backfill did when it is done (piped
/// output: no line per batch), and on Ctrl-C would say that the committed
/// batches stay done; `list` and the dry run show the directive.
#[test]
fn cli_up_reports_the_backfill() {
    let pkg = tests::Package::named("backfill-cli");
    super::lint::migrations(&pkg, &[("0001_items.sql", ITEMS), ("0002_fill_n.sql", FILL)]);
    let first = super::phases::migrate(&pkg, &["up", "--to", "1"]);
    assert!(first.starts_with("exit 0\n"), "{first}");
    let conn = Connection::open(pkg.path().join("app.db")).unwrap();
    conn.execute_batch(
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2500) \
         INSERT INTO items (kind) SELECT CASE WHEN i % 5 = 0 THEN 'new' ELSE 'old' END FROM r",
    )
    .unwrap();
    let mut text = String::new();
    for args in [&["list"][..], &["up", "--dry-run"], &["up"], &["status"], &["diff"]] {
        text.push_str(&format!(
            "$ cargo migrate {}\n{}\n",
            args.join(" "),
            super::phases::migrate(&pkg, args)
        ));
    }
    insta::assert_snapshot!("backfill_cli", text);
    assert_eq!(count(&conn, "SELECT count(*) FROM items WHERE n = 1"), 2000);
    assert_eq!(count(&conn, "SELECT count(*) FROM items WHERE n = 0"), 500);
}

/// A real build: the generated module carries `-- migrate:batch`, and the
/// app's start-up `apply` runs the backfill in batches.
#[test]
fn the_generated_module_runs_the_backfill_in_batches() {
    let pkg = tests::Package::named("backfill-build");
    super::lint::migrations(&pkg, &[("0001_items.sql", ITEMS), ("0002_fill_n.sql", FILL)]);
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    let generated = std::fs::read_to_string(
        walk_for(&tests::testbox_target(), "migrations.rs", "backfill-build").expect("the generated module"),
    )
    .unwrap();
    assert!(generated.contains("        up_batch: 1000,\n"), "{generated}");
    let db = pkg.path().join("app.db");
    let mut conn = Connection::open(&db).unwrap();
    let (_dir, ms) = migrations(ITEMS);
    Migrator::new(&ms).migrate_to(&mut conn, 1).unwrap();
    conn.execute_batch(
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 3500) \
         INSERT INTO items (kind) SELECT 'old' FROM r",
    )
    .unwrap();
    let out = Command::new(pkg.binary()).arg(&db).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("applied 2 fill_n ("), "{stdout}");
    check_sqlite(&conn, 3500, 0, 0);
    // The next start finds nothing to do, and no drift: the progress
    // table is not part of the schema the build fingerprinted.
    let again = Command::new(pkg.binary()).arg(&db).output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(again.status.success(), "{said}");
    assert!(!said.contains("drift") && !said.contains("applied 2"), "{said}");
}

/// The newest `name` under `dir` whose path mentions `package`.
fn walk_for(dir: &std::path::Path, name: &str, package: &str) -> Option<std::path::PathBuf> {
    let mut best: Option<(std::time::SystemTime, std::path::PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == name) && p.to_string_lossy().contains(package) {
                let t = e.metadata().and_then(|m| m.modified()).ok()?;
                if best.as_ref().is_none_or(|(b, _)| t > *b) {
                    best = Some((t, p));
                }
            }
        }
    }
    best.map(|(_, p)| p)
}

/// SQLite: a WITHOUT ROWID table has no rowid to walk; the backfill is
/// refused before anything runs, with the file and line.
#[test]
fn sqlite_refuses_a_without_rowid_table() {
    let (dir, ms) = migrations(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;\n",
    );
    let mut conn = Connection::open(dir.path().with_extension("db")).unwrap();
    let err = Migrator::new(&ms).apply(&mut conn).unwrap_err();
    assert!(matches!(err, migrate_runtime::Error::Batch { .. }), "{err:?}");
    assert!(
        err.to_string().ends_with("0002_fill_n.sql:3: migration 2 `fill_n` cannot run in batches (-- migrate:batch): `items` is a WITHOUT ROWID table: there is no rowid to walk in ranges; run this UPDATE without `-- migrate:batch` (in one transaction), or batch it by hand in migrations of its own"),
        "{err}"
    );
    assert_eq!(tests::applied_versions(&conn), [1]);
}

/// SQLite: two migrator processes started at once share the backfill
/// (each batch reads the progress under the write lock), so no range is
/// updated twice, and the migration is recorded once.
#[test]
fn sqlite_two_migrators_share_one_backfill() {
    const ROWS: u64 = 200_000;
    let (dir, ms) = migrations(ITEMS);
    let path = dir.path().with_extension("db");
    let conn = sqlite_db(&path, &ms, ROWS);
    let run = || migrator_process(&[dir.path().to_str().unwrap(), path.to_str().unwrap()]);
    let (a, b) = (run(), run());
    let mut batches = 0;
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        batches += text
            .lines()
            .filter(|l| l.starts_with("batch ") && !l.starts_with("batch 0 "))
            .count();
    }
    check_sqlite(&conn, ROWS, 0, 0);
    assert_eq!(tests::applied_versions(&conn), [1, 2]);
    assert!(
        (200..=202).contains(&batches),
        "the two ran {batches} batches between them, each range once"
    );
}
