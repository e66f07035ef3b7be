//! The runtime's rules, on real database files: order, tracking, atomicity,
//! history checks, rolling back, grouped and no-transaction migrations,
//! SQLite's foreign-key procedure, locking, and several processes at once.

use std::cell::RefCell;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Direction, Error, Event, Migration, Migrator, Script, State};

fn up(version: u64, name: &str, sql: &str) -> Migration {
    Migration::new(
        version,
        name.to_owned(),
        Script::new(sql.to_owned(), format!("migrations/{version:04}_{name}.up.sql")),
    )
}

fn updown(version: u64, name: &str, sql: &str, down: &str) -> Migration {
    up(version, name, sql).with_down(Script::new(
        down.to_owned(),
        format!("migrations/{version:04}_{name}.down.sql"),
    ))
}

fn db() -> (tempfile::TempDir, Connection) {
    let dir = tests::scratch();
    let conn = Connection::open(dir.path().join("app.db")).unwrap();
    (dir, conn)
}

use tests::{applied_versions as versions, user_tables as tables};

#[test]
fn applies_in_numeric_order_and_records_each() {
    let (_d, mut conn) = db();
    let ms = [
        up(1, "log", "CREATE TABLE log (v INTEGER);"),
        up(9, "nine", "INSERT INTO log VALUES (9);"),
        up(10, "ten", "INSERT INTO log VALUES (10);"),
    ];
    let report = Migrator::new(&ms).apply(&mut conn).unwrap();
    let order: Vec<u64> = report.applied().map(|s| s.version).collect();
    assert_eq!(order, [1, 9, 10]);
    let logged: Vec<i64> = conn
        .prepare("SELECT v FROM log ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(logged, [9, 10], "010 runs after 009");
    assert_eq!(versions(&conn), [1, 9, 10]);
    // The tracking row has every column, applied_at in RFC 3339 UTC.
    let (name, checksum, at, ms_): (String, String, String, i64) = conn
        .query_row(
            "SELECT name, checksum, applied_at, duration_ms FROM _migrations WHERE version = 9",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(name, "nine");
    assert_eq!(checksum, ms[1].checksum().to_string());
    assert!(at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T', "{at}");
    assert!(ms_ >= 0);
}

#[test]
fn empty_list_and_second_run_change_nothing() {
    let (_d, mut conn) = db();
    let report = Migrator::new(&[]).apply(&mut conn).unwrap();
    assert!(report.is_empty());
    assert!(tables(&conn).is_empty(), "no tracking table for nothing");
    let ms = [up(1, "a", "CREATE TABLE a (x);")];
    Migrator::new(&ms).apply(&mut conn).unwrap();
    let before: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0)).unwrap();
    let second = Migrator::new(&ms).apply(&mut conn).unwrap();
    assert!(second.is_empty());
    assert_eq!(second.to_string(), "nothing to do: the database is up to date\n");
    let changes = conn.total_changes();
    let after: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0)).unwrap();
    assert_eq!(before, after);
    assert_eq!(changes, conn.total_changes());
}

#[test]
fn failure_rolls_back_that_migration_and_names_file_and_line() {
    let (_d, mut conn) = db();
    let ms = [
        up(1, "a", "CREATE TABLE a (x);"),
        up(
            2,
            "b",
            "CREATE TABLE b (x);\nINSERT INTO a VALUES (1);\n\n-- then a typo\nINSERT INTO nope VALUES (1);\n",
        ),
        up(3, "c", "CREATE TABLE c (x);"),
    ];
    let err = Migrator::new(&ms).apply(&mut conn).unwrap_err();
    match &err {
        Error::Sql {
            version,
            file,
            line,
            message,
            rolled_back,
            ..
        } => {
            assert_eq!((*version, file.as_str(), *line), (2, "migrations/0002_b.up.sql", 5));
            assert_eq!(message, "no such table: nope");
            assert!(rolled_back);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "migrations/0002_b.up.sql:5: up migration 2 `b` failed: no such table: nope; it was rolled back, nothing of this migration is applied; fix the statement and run again"
    );
    assert_eq!(versions(&conn), [1], "what was applied before stays applied");
    assert_eq!(
        tables(&conn),
        ["_migrations", "a"],
        "nothing of 2 remains, 3 did not run"
    );
    let rows: i64 = conn.query_row("SELECT count(*) FROM a", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0);
}

#[test]
fn error_line_points_at_the_bad_token_inside_a_statement() {
    let (_d, mut conn) = db();
    let ms = [up(
        1,
        "a",
        "CREATE TABLE a (\n  x INTEGER,\n  y INTEGR NOT NULL,\n  z,\n);",
    )];
    match Migrator::new(&ms).apply(&mut conn).unwrap_err() {
        Error::Sql { line, message, .. } => {
            assert_eq!(line, 5, "{message}");
            assert!(message.contains("syntax error"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn edited_renamed_unknown_and_out_of_order_are_refused_unless_allowed() {
    let (_d, mut conn) = db();
    Migrator::new(&[up(1, "a", "CREATE TABLE a (x);"), up(3, "c", "CREATE TABLE c (x);")])
        .apply(&mut conn)
        .unwrap();
    let snapshot = versions(&conn);

    let edited = [up(1, "a", "CREATE TABLE a (x, y);"), up(3, "c", "CREATE TABLE c (x);")];
    let e = Migrator::new(&edited).apply(&mut conn).unwrap_err();
    assert!(matches!(e, Error::Modified { version: 1, .. }), "{e}");
    assert!(
        Migrator::new(&edited)
            .allow_modified(true)
            .apply(&mut conn)
            .unwrap()
            .is_empty()
    );

    let renamed = [up(1, "b", "CREATE TABLE a (x);"), up(3, "c", "CREATE TABLE c (x);")];
    let e = Migrator::new(&renamed).apply(&mut conn).unwrap_err();
    assert!(matches!(e, Error::Renamed { version: 1, .. }), "{e}");

    let older_binary = [up(1, "a", "CREATE TABLE a (x);")];
    let e = Migrator::new(&older_binary).apply(&mut conn).unwrap_err();
    assert!(
        matches!(&e, Error::UnknownApplied { versions } if versions == &[(3, "c".to_owned())]),
        "{e}"
    );
    assert!(
        Migrator::new(&older_binary)
            .allow_unknown(true)
            .apply(&mut conn)
            .unwrap()
            .is_empty()
    );

    let merged = [
        up(1, "a", "CREATE TABLE a (x);"),
        up(2, "b", "CREATE TABLE b (x);"),
        up(3, "c", "CREATE TABLE c (x);"),
    ];
    let e = Migrator::new(&merged).apply(&mut conn).unwrap_err();
    assert!(
        matches!(
            e,
            Error::OutOfOrder {
                version: 2,
                latest_applied: 3,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(versions(&conn), snapshot, "refusals change nothing");
    let r = Migrator::new(&merged)
        .allow_out_of_order(true)
        .apply(&mut conn)
        .unwrap();
    assert_eq!(r.applied().map(|s| s.version).collect::<Vec<_>>(), [2]);
}

#[test]
fn status_and_pending() {
    let (_d, mut conn) = db();
    let ms = [up(1, "a", "CREATE TABLE a (x);"), up(2, "b", "CREATE TABLE b (x);")];
    let migrator = Migrator::new(&ms);
    assert_eq!(migrator.pending(&conn).unwrap().len(), 2);
    migrator.migrate_to(&mut conn, 1).unwrap();
    let status = migrator.status(&conn).unwrap();
    let states: Vec<State> = status.entries.iter().map(|e| e.state).collect();
    assert_eq!(states, [State::Applied, State::Pending]);
    assert!(status.entries[0].applied.as_ref().unwrap().applied_at.ends_with('Z'));
    let changed = [up(1, "a", "CREATE TABLE a (y);")];
    let status = Migrator::new(&changed).status(&conn).unwrap();
    assert_eq!(status.entries[0].state, State::Modified);
    conn.execute_batch(
        "INSERT INTO _migrations (version, name, checksum, applied_at, duration_ms) VALUES (7, 'ghost', 'x', '2026-01-01T00:00:00.000Z', 0)",
    )
        .unwrap();
    let status = migrator.status(&conn).unwrap();
    assert_eq!(status.unknown.len(), 1);
    assert_eq!(status.unknown[0].name, "ghost");
}

#[test]
fn migrate_to_goes_down_newest_first_and_refuses_irreversible_before_touching_anything() {
    let (_d, mut conn) = db();
    let ms = [
        up(1, "a", "CREATE TABLE a (x);"),
        updown(2, "b", "CREATE TABLE b (x);", "DROP TABLE b;"),
        updown(3, "c", "CREATE TABLE c (x);", "DROP TABLE c;"),
    ];
    let order = RefCell::new(Vec::new());
    let migrator = Migrator::new(&ms).on_event(|e| {
        if let Event::Finished {
            migration, direction, ..
        } = e
        {
            order.borrow_mut().push((migration.version(), *direction));
        }
    });
    migrator.apply(&mut conn).unwrap();
    order.borrow_mut().clear();
    migrator.migrate_to(&mut conn, 1).unwrap();
    assert_eq!(*order.borrow(), [(3, Direction::Down), (2, Direction::Down)]);
    assert_eq!(tables(&conn), ["_migrations", "a"]);
    assert_eq!(versions(&conn), [1]);

    migrator.apply(&mut conn).unwrap();
    let e = migrator.migrate_to(&mut conn, 0).unwrap_err();
    assert!(matches!(e, Error::Irreversible { version: 1, .. }), "{e}");
    assert_eq!(versions(&conn), [1, 2, 3], "nothing rolled back");
    assert_eq!(tables(&conn), ["_migrations", "a", "b", "c"]);

    let e = migrator.migrate_to(&mut conn, 42).unwrap_err();
    assert!(matches!(e, Error::UnknownTarget { target: 42, .. }), "{e}");
    // Up to a target in the middle.
    migrator.migrate_to(&mut conn, 2).unwrap();
    assert_eq!(versions(&conn), [1, 2]);
}

#[test]
fn grouped_mode_is_all_or_nothing() {
    let (_d, mut conn) = db();
    let ms = [
        up(1, "a", "CREATE TABLE a (x);"),
        up(2, "b", "CREATE TABLE b (x);"),
        up(3, "bad", "CREATE TABLE a (x);"),
    ];
    let e = Migrator::new(&ms).grouped(true).apply(&mut conn).unwrap_err();
    assert!(matches!(e, Error::Sql { version: 3, .. }), "{e}");
    assert!(tables(&conn).is_empty(), "{:?}", tables(&conn));
    let r = Migrator::new(&ms[..2]).grouped(true).apply(&mut conn).unwrap();
    assert_eq!(r.applied().count(), 2);
    assert_eq!(versions(&conn), [1, 2]);
}

#[test]
fn no_transaction_scripts_run_outside_a_transaction() {
    let (_d, mut conn) = db();
    let vacuum = Migration::new(
        2,
        "vacuum",
        Script::new("VACUUM;", "migrations/0002_vacuum.sql").with_no_transaction(true),
    );
    let ms = [up(1, "a", "CREATE TABLE a (x);"), vacuum];
    let e = Migrator::new(&ms).grouped(true).apply(&mut conn).unwrap_err();
    assert!(matches!(e, Error::NoTransactionInGroup { version: 2, .. }), "{e}");
    assert!(tables(&conn).is_empty());
    Migrator::new(&ms).apply(&mut conn).unwrap();
    assert_eq!(versions(&conn), [1, 2]);
    // Without the directive SQLite refuses, and the hint says what to do.
    let (_d2, mut other) = db();
    let e = Migrator::new(&[up(1, "vacuum", "VACUUM;")])
        .apply(&mut other)
        .unwrap_err();
    assert!(e.to_string().contains("-- migrate:no-transaction"), "{e}");
}

#[test]
fn table_rebuild_keeps_cascading_children_and_restores_settings() {
    let (_d, mut conn) = db();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    conn.busy_timeout(Duration::from_millis(1234)).unwrap();
    let ms = [
        up(
            1,
            "schema",
            "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent (id) ON DELETE CASCADE);
             INSERT INTO parent VALUES (1, 'a'), (2, 'b');
             INSERT INTO child (parent_id) VALUES (1), (1), (2);",
        ),
        up(
            2,
            "rebuild_parent",
            "CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
             INSERT INTO parent_new SELECT id, coalesce(name, '') FROM parent;
             DROP TABLE parent;
             ALTER TABLE parent_new RENAME TO parent;",
        ),
    ];
    Migrator::new(&ms).apply(&mut conn).unwrap();
    let children: i64 = conn.query_row("SELECT count(*) FROM child", [], |r| r.get(0)).unwrap();
    assert_eq!(children, 3, "DROP TABLE parent must not cascade into child");
    let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(fk, 1, "foreign_keys restored");
    let busy: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0)).unwrap();
    assert_eq!(busy, 1234, "busy_timeout restored");
}

#[test]
fn a_rebuild_that_breaks_a_foreign_key_is_refused_naming_the_table() {
    let (_d, mut conn) = db();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let ms = [
        up(
            1,
            "schema",
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id));
             INSERT INTO parent VALUES (1), (2);
             INSERT INTO child (parent_id) VALUES (1), (2);",
        ),
        up(
            2,
            "lossy_rebuild",
            "CREATE TABLE parent_new (id INTEGER PRIMARY KEY);
             INSERT INTO parent_new SELECT id FROM parent WHERE id = 1;
             DROP TABLE parent;
             ALTER TABLE parent_new RENAME TO parent;",
        ),
    ];
    let e = Migrator::new(&ms).apply(&mut conn).unwrap_err();
    match &e {
        Error::ForeignKey {
            version,
            table,
            parent,
            rows,
            ..
        } => assert_eq!(
            (*version, table.as_str(), parent.as_str(), *rows),
            (2, "child", "parent", 1)
        ),
        other => panic!("{other}"),
    }
    assert_eq!(versions(&conn), [1]);
    let parents: i64 = conn.query_row("SELECT count(*) FROM parent", [], |r| r.get(0)).unwrap();
    assert_eq!(parents, 2, "rolled back");
}

#[test]
fn violations_that_were_already_there_do_not_block_a_migration() {
    let (_d, mut conn) = db();
    let ms = [up(
        1,
        "schema",
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id));",
    )];
    Migrator::new(&ms).apply(&mut conn).unwrap();
    // An old database with an orphan, written while foreign keys were off
    // (rusqlite's bundled SQLite turns them on by default).
    conn.execute_batch("PRAGMA foreign_keys = OFF; INSERT INTO child (parent_id) VALUES (99)")
        .unwrap();
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    let more = [
        ms[0].clone(),
        up(
            2,
            "add_note",
            "ALTER TABLE child ADD COLUMN note TEXT; INSERT INTO parent VALUES (1);",
        ),
    ];
    Migrator::new(&more).apply(&mut conn).unwrap();
    assert_eq!(versions(&conn), [1, 2]);
    // But adding a new orphan is refused.
    let worse = [
        more[0].clone(),
        more[1].clone(),
        up(3, "orphan", "INSERT INTO child (parent_id) VALUES (98);"),
    ];
    let e = Migrator::new(&worse).apply(&mut conn).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ForeignKey {
                version: 3,
                rows: 1,
                ..
            }
        ),
        "{e}"
    );
}

/// Within one run, the list of tables with foreign keys follows each
/// migration: a child table made by one migration (its key declared in
/// lower case, its name written in another case later) is checked when a
/// later migration of the same run writes an orphan into it, also after a
/// rename.
#[test]
fn a_child_table_made_earlier_in_the_same_run_is_checked() {
    let (_d, mut conn) = db();
    let ms = [
        up(
            1,
            "parent",
            "CREATE TABLE parent (id INTEGER PRIMARY KEY); INSERT INTO parent VALUES (1);",
        ),
        up(
            2,
            "child",
            "CREATE TABLE Child (id INTEGER PRIMARY KEY, parent_id INTEGER references parent (id));",
        ),
        up(3, "fine", "INSERT INTO child (parent_id) VALUES (1);"),
        up(4, "renamed", "ALTER TABLE child RENAME TO kid;"),
        up(5, "orphan", "INSERT INTO kid (parent_id) VALUES (98);"),
    ];
    let e = Migrator::new(&ms).apply(&mut conn).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::ForeignKey {
                version: 5,
                rows: 1,
                table,
                ..
            } if table == "kid"
        ),
        "{e}"
    );
    assert_eq!(versions(&conn), [1, 2, 3, 4]);
}

#[test]
fn refuses_inside_a_callers_transaction() {
    let (_d, mut conn) = db();
    conn.execute_batch("BEGIN").unwrap();
    let e = Migrator::new(&[up(1, "a", "CREATE TABLE a (x);")])
        .apply(&mut conn)
        .unwrap_err();
    assert!(matches!(e, Error::InTransaction), "{e}");
}

#[test]
fn wrong_shape_tracking_table_is_a_clear_error_and_changes_nothing() {
    let (_d, mut conn) = db();
    conn.execute_batch("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, script TEXT)")
        .unwrap();
    let e = Migrator::new(&[up(1, "a", "CREATE TABLE a (x);")])
        .apply(&mut conn)
        .unwrap_err();
    assert!(matches!(e, Error::TrackingTable { .. }), "{e}");
    assert!(e.to_string().contains("another tool"), "{e}");
    assert_eq!(tables(&conn), ["_migrations"]);
    // Another table name works.
    Migrator::new(&[up(1, "a", "CREATE TABLE a (x);")])
        .table("schema_history")
        .apply(&mut conn)
        .unwrap();
}

#[test]
fn a_file_that_is_not_sqlite_is_a_clear_error() {
    let dir = tests::scratch();
    let path = dir.path().join("app.db");
    let garbage = vec![0x42u8; 4096];
    std::fs::write(&path, &garbage).unwrap();
    let mut conn = Connection::open(&path).unwrap();
    let e = Migrator::new(&[up(1, "a", "CREATE TABLE a (x);")])
        .apply(&mut conn)
        .unwrap_err();
    assert!(e.to_string().contains("not an SQLite database"), "{e}");
    drop(conn);
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "file untouched");
}

#[test]
fn lock_held_longer_than_the_timeout_is_a_clear_error() {
    let (dir, mut conn) = db();
    let holder = Connection::open(dir.path().join("app.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE; CREATE TABLE held (x);").unwrap();
    let e = Migrator::new(&[up(1, "a", "CREATE TABLE a (x);")])
        .lock_timeout(Duration::from_millis(300))
        .apply(&mut conn)
        .unwrap_err();
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    assert!(e.to_string().contains("locked by another process"), "{e}");
    holder.execute_batch("ROLLBACK").unwrap();
    assert!(tables(&conn).is_empty(), "nothing changed");
}

#[test]
fn waits_for_a_lock_and_reports_that_it_waited() {
    let (dir, mut conn) = db();
    let path = dir.path().join("app.db");
    let holder = Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE; CREATE TABLE held (x);").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        holder.execute_batch("COMMIT").unwrap();
    });
    let waited = RefCell::new(false);
    let report = Migrator::new(&[up(1, "a", "CREATE TABLE a (x);")])
        .on_event(|e| {
            if matches!(e, Event::Waiting { .. }) {
                *waited.borrow_mut() = true;
            }
        })
        .apply(&mut conn)
        .unwrap();
    release.join().unwrap();
    assert!(*waited.borrow());
    assert!(report.waited.unwrap() >= Duration::from_millis(100), "{report:?}");
    assert_eq!(versions(&conn), [1]);
}

#[test]
fn creates_a_database_file_that_does_not_exist() {
    let dir = tests::scratch();
    let path = dir.path().join("new.db");
    assert!(!path.exists());
    let mut conn = Connection::open(&path).unwrap();
    Migrator::new(&[up(1, "a", "CREATE TABLE a (x);")])
        .apply(&mut conn)
        .unwrap();
    drop(conn);
    assert!(path.exists());
    let conn = Connection::open(&path).unwrap();
    assert_eq!(versions(&conn), [1]);
}

#[test]
fn validate_replays_and_round_trips() {
    let good = [
        updown(1, "a", "CREATE TABLE a (x);", "DROP TABLE a;"),
        updown(
            2,
            "b",
            "ALTER TABLE a ADD COLUMN y TEXT;",
            "ALTER TABLE a DROP COLUMN y;",
        ),
    ];
    let schema = Migrator::new(&good).validate().unwrap();
    assert_eq!(schema.objects().len(), 1);
    let bad = [updown(
        1,
        "a",
        "CREATE TABLE a (x); CREATE INDEX ax ON a (x);",
        "DROP INDEX ax;",
    )];
    let e = Migrator::new(&bad).validate().unwrap_err();
    assert!(e.to_string().contains("table `a` was left behind"), "{e}");
}

/// `fn main() -> Result<(), Box<dyn std::error::Error>>` prints the error's
/// `Debug`: it must be the readable message, not the variant's fields.
#[test]
fn error_debug_is_the_readable_message() {
    let (_d, mut conn) = db();
    let newer = [up(1, "a", "CREATE TABLE a (x);"), up(2, "b", "CREATE TABLE b (x);")];
    Migrator::new(&newer).apply(&mut conn).unwrap();
    let older = &newer[..1];
    let mut run = || -> Result<(), Box<dyn std::error::Error>> {
        Migrator::new(older).apply(&mut conn)?;
        Ok(())
    };
    let e = run().unwrap_err();
    let shown = format!("Error: {e:?}");
    assert_eq!(shown, format!("Error: {e}"));
    assert!(shown.contains("2 `b`"), "{shown}");
    assert!(!shown.contains("UnknownApplied {"), "{shown}");
}

// ---- several real processes ----

fn worker() -> &'static str {
    env!("CARGO_BIN_EXE_migrate-worker")
}

/// A migration that takes a while: a million-row insert.
fn slow(table: &str) -> String {
    format!(
        "CREATE TABLE {table} (x INTEGER);\nWITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000)\nINSERT INTO {table} SELECT x FROM c;\n"
    )
}

pub(crate) fn write_slow_set(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 1..=n {
        std::fs::write(dir.join(format!("{i:04}_step{i}.sql")), slow(&format!("t{i}"))).unwrap();
    }
}

#[test]
fn eight_processes_start_at_once_and_each_migration_is_applied_once() {
    let dir = tests::scratch();
    let migrations = dir.path().join("migrations");
    write_slow_set(&migrations, 4);
    let db = dir.path().join("app.db");
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(worker())
                .arg(&migrations)
                .arg(&db)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let mut applied = Vec::new();
    let mut waited = 0;
    for out in &outputs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
        for line in stdout.lines() {
            if let Some(v) = line.strip_prefix("applied ") {
                applied.push(v.parse::<u64>().unwrap());
            }
            if line.starts_with("waited ") {
                waited += 1;
            }
        }
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        [1, 2, 3, 4],
        "each migration applied exactly once across processes"
    );
    assert!(waited >= 1, "the others report that they waited");
    let conn = Connection::open(&db).unwrap();
    assert_eq!(versions(&conn), [1, 2, 3, 4]);
    for i in 1..=4 {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM t{i}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 400_000);
    }
}
