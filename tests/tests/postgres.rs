//! The runtime's rules on PostgreSQL, against a real server (a throw-away
//! cluster per test process, or `MIGRATE_TEST_POSTGRES_URL`; see
//! `tests::postgres`): order, tracking, atomicity with file:line errors,
//! history checks, rolling back, grouped and no-transaction migrations,
//! both lock modes, schemas, and several processes at once, killed or not.

use std::process::Command;
use std::time::{Duration, Instant};

use migrate_runtime::postgres::Client;
use migrate_runtime::{Direction, Error, Lock, Migration, Migrator, Script, State};
use tests::pg_database;

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

fn no_tx(m: Migration) -> Migration {
    let up = m.up().clone().with_no_transaction(true);
    let mut out = Migration::new(m.version(), m.name().to_owned(), up);
    if let Some(down) = m.down() {
        out = out.with_down(down.clone());
    }
    out
}

fn versions_in(client: &mut Client, table: &str) -> Vec<i64> {
    client
        .query(&format!("SELECT version FROM {table} ORDER BY version"), &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn versions(client: &mut Client) -> Vec<i64> {
    versions_in(client, "_migrations")
}

fn tables(client: &mut Client, schema: &str) -> Vec<String> {
    client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A new login role of `db`'s own, without privileges: the URL for it, and
/// its name (for the test to drop with [`drop_role`]). `None` (the test
/// skips it) unless the server is the tests' own, trust-authenticated one.
pub(crate) fn unprivileged_url(db: &tests::postgres::Database) -> Option<(String, String)> {
    db.server().dir.as_ref()?;
    let role = format!("r_{}", db.name);
    db.client()
        .batch_execute(&format!("CREATE ROLE \"{role}\" LOGIN"))
        .unwrap();
    let url = db
        .url
        .replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    Some((url, role))
}

/// Drops a role [`unprivileged_url`] made, with what it owns and was
/// granted, through `owner` (a connection of the database's owner).
pub(crate) fn drop_role(owner: &mut Client, role: &str) {
    owner
        .batch_execute(&format!("DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\""))
        .unwrap();
}

/// Whether another session can take the migration lock right now.
pub(crate) fn lock_is_free(db: &tests::postgres::Database, table: &str) -> bool {
    let mut other = db.client();
    let schema: String = other.query_one("SELECT current_schema()::text", &[]).unwrap().get(0);
    let key = advisory_key(&format!("{schema}.{table}"));
    let row = other.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).unwrap();
    let free: bool = row.get(0);
    if free {
        other.execute("SELECT pg_advisory_unlock($1)", &[&key]).unwrap();
    }
    free
}

/// How many advisory locks `client`'s own session holds.
fn advisory_locks_held(client: &mut Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
}

/// The advisory-lock key the runtime documents: the first 8 bytes of the
/// SHA-256 of `schema.table`, big-endian.
fn advisory_key(qualified: &str) -> i64 {
    let digest = migrate_runtime::Checksum::of(qualified);
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_bytes()[..8]);
    i64::from_be_bytes(bytes)
}

#[test]
fn pg_applies_in_numeric_order_records_each_and_reruns_as_a_no_op() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(1, "log", "CREATE TABLE log (v integer);"),
        up(9, "nine", "INSERT INTO log VALUES (9);"),
        up(10, "ten", "INSERT INTO log VALUES (10);"),
    ];
    let report = Migrator::new(&ms).apply_postgres(&mut client).unwrap();
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [1, 9, 10]);
    let logged: Vec<i32> = client
        .query("SELECT v FROM log ORDER BY ctid", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(logged, [9, 10]);
    assert_eq!(versions(&mut client), [1, 9, 10]);
    let row = client
        .query_one(
            "SELECT name, checksum, applied_at, duration_ms, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY') FROM _migrations WHERE version = 9",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "nine");
    assert_eq!(row.get::<_, String>(1), ms[1].checksum().to_string());
    assert!(row.get::<_, i64>(3) >= 0);
    let status = Migrator::new(&ms).status_postgres(&mut client).unwrap();
    let applied = &status.entries[1].applied.as_ref().unwrap().applied_at;
    assert!(applied.ends_with('Z') && applied.contains('T'), "{applied}");
    // Again: nothing to do, nothing changed.
    let again = Migrator::new(&ms).apply_postgres(&mut client).unwrap();
    assert!(again.is_empty());
    assert_eq!(versions(&mut client), [1, 9, 10]);
    // The connection is left as it was found: no transaction, usable.
    client.batch_execute("BEGIN; SELECT 1; COMMIT").unwrap();
}

/// Each migration's transaction reads only a summary of the history (in
/// the lock's round trip) and the whole history only when it changed: a
/// change by another process between two of the run's transactions must
/// still be seen, or the run would apply again what the other applied, or
/// skip what the other rolled back.
#[test]
fn pg_history_changed_by_another_process_between_two_migrations_is_seen() {
    use std::cell::{Cell, RefCell};
    let Some(db) = pg_database!() else { return };
    let ms = [
        updown(1, "a", "CREATE TABLE a (v integer);", "DROP TABLE a;"),
        updown(2, "b", "CREATE TABLE b (v integer);", "DROP TABLE b;"),
        updown(3, "c", "CREATE TABLE c (v integer);", "DROP TABLE c;"),
        updown(4, "d", "CREATE TABLE d (v integer);", "DROP TABLE d;"),
    ];
    // After this run's migration 1, another process applies 2 and 3 (more
    // rows): this run goes on with 4 only.
    let mut client = db.client();
    let other = RefCell::new(db.client());
    let once = Cell::new(true);
    let report = Migrator::new(&ms)
        .on_event(|e| {
            if let migrate_runtime::Event::Finished { migration, .. } = e
                && migration.version() == 1
                && once.replace(false)
            {
                Migrator::new(&ms[..3]).apply_postgres(&mut other.borrow_mut()).unwrap();
            }
        })
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [1, 4]);
    assert_eq!(versions(&mut client), [1, 2, 3, 4]);

    // Rolling back: after this run's first step down (4), another process
    // rolls back 3 and 2 and applies 2 again (fewer rows, same highest
    // version as a plan made before would expect next): this run rolls
    // back what is left, 2 and 1, and never runs 3's down script twice.
    let once = Cell::new(true);
    let down = Migrator::new(&ms)
        .on_event(|e| {
            if let migrate_runtime::Event::Finished { migration, .. } = e
                && migration.version() == 4
                && once.replace(false)
            {
                let mut other = other.borrow_mut();
                Migrator::new(&ms).migrate_to_postgres(&mut other, 1).unwrap();
                Migrator::new(&ms).migrate_to_postgres(&mut other, 2).unwrap();
            }
        })
        .migrate_to_postgres(&mut client, 0)
        .unwrap();
    assert_eq!(down.rolled_back().map(|s| s.version).collect::<Vec<_>>(), [4, 2, 1]);
    assert!(versions(&mut client).is_empty());
    assert_eq!(tables(&mut client, "public"), ["_migrations", "_migrations_head"]);
}

#[test]
fn pg_failure_rolls_back_that_migration_only_and_names_file_line_and_server_message() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        up(
            2,
            "b",
            "CREATE TABLE b (x integer);\nINSERT INTO a VALUES (1);\n\nSELECT nope FROM a;\n",
        ),
        up(3, "c", "CREATE TABLE c (x integer);"),
    ];
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "migrations/0002_b.up.sql:4: up migration 2 `b` failed: column \"nope\" does not exist (SQLSTATE 42703)"
        ),
        "{text}"
    );
    assert!(text.contains("it was rolled back"), "{text}");
    assert!(
        matches!(
            err,
            Error::Sql {
                version: 2,
                line: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(versions(&mut client), [1]);
    assert_eq!(tables(&mut client, "public"), ["_migrations", "a"]);
    let rows: i64 = client.query_one("SELECT count(*) FROM a", &[]).unwrap().get(0);
    assert_eq!(rows, 0, "the failed migration's insert is rolled back");
    // The connection goes on working, and the lock is not kept.
    assert!(lock_is_free(&db, "_migrations"));
    client.batch_execute("SELECT 1").unwrap();
}

#[test]
fn pg_a_script_and_its_tracking_row_share_a_round_trip_and_a_row_that_fails_is_named_so() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    // The row follows the script in the same message: a last statement
    // without `;` and a last line comment without a line break end
    // before it.
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        up(
            2,
            "b",
            "CREATE TABLE b (x integer) -- the last line, no `;`, no line break",
        ),
        up(3, "c", "CREATE TABLE c (x integer);\nINSERT INTO a VALUES (1);"),
    ];
    Migrator::new(&ms[..2]).apply_postgres(&mut client).unwrap();
    assert_eq!(versions(&mut client), [1, 2]);
    let durations: Vec<i64> = client
        .query("SELECT duration_ms FROM _migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(durations.iter().all(|d| (0..60_000).contains(d)), "{durations:?}");
    // The tracking row cannot be written: the error says so (not a line of
    // the script, which ran), and the migration is rolled back whole.
    client
        .batch_execute(
            "CREATE FUNCTION no_rows() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'no new rows today'; END$$;\n\
             CREATE TRIGGER no_rows BEFORE INSERT ON _migrations FOR EACH ROW EXECUTE FUNCTION no_rows();",
        )
        .unwrap();
    // (The function and trigger are not the migrations' schema.)
    let unchecked = Migrator::new(&ms).drift(migrate_runtime::DriftPolicy::Off);
    let err = unchecked.apply_postgres(&mut client).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("recording migration 3 in \"_migrations\""), "{text}");
    assert!(text.contains("no new rows today"), "{text}");
    assert!(!matches!(err, Error::Sql { .. }), "{err:?}");
    assert_eq!(versions(&mut client), [1, 2]);
    assert!(!tables(&mut client, "public").contains(&"c".to_owned()));
    let rows: i64 = client.query_one("SELECT count(*) FROM a", &[]).unwrap().get(0);
    assert_eq!(rows, 0, "the script's insert is rolled back with the row");
    assert!(lock_is_free(&db, "_migrations"));
    client.batch_execute("DROP TRIGGER no_rows ON _migrations").unwrap();
    unchecked.apply_postgres(&mut client).unwrap();
    assert_eq!(versions(&mut client), [1, 2, 3]);
}

#[test]
fn pg_errors_without_a_position_name_the_statement_line_and_detail_and_hint() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [up(
        1,
        "dup",
        "CREATE TABLE t (x integer PRIMARY KEY);\nINSERT INTO t VALUES (1);\n-- a comment\nINSERT INTO t\n  VALUES (1);\n",
    )];
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("migrations/0001_dup.up.sql:4: up migration 1 `dup` failed: duplicate key value violates unique constraint \"t_pkey\" (SQLSTATE 23505); detail: Key (x)=(1) already exists."), "{text}");
    let hinted = [up(
        1,
        "hint",
        "CREATE TABLE t (x integer);\nSELECT * FROM t WHERE x = 1;\nSELECT lower(1, 2);\n",
    )];
    let err = Migrator::new(&hinted).apply_postgres(&mut client).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("migrations/0001_hint.up.sql:"), "{text}");
    assert!(
        text.contains("server hint: No function matches the given name and argument types"),
        "{text}"
    );
    assert!(matches!(err, Error::Sql { line: 3, .. }), "{text}");
    assert!(tables(&mut client, "public").is_empty());
}

#[test]
fn pg_history_refusals_modified_renamed_unknown_out_of_order() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        up(3, "c", "CREATE TABLE c (x integer);"),
    ];
    Migrator::new(&ms).apply_postgres(&mut client).unwrap();
    assert_eq!(
        digests(&mut client),
        [false, true],
        "the newest row carries the history's digest"
    );

    let edited = [up(1, "a", "CREATE TABLE a (x bigint);"), ms[1].clone()];
    let err = Migrator::new(&edited).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(err, Error::Modified { version: 1, .. }), "{err}");
    assert!(
        Migrator::new(&edited)
            .allow_modified(true)
            .apply_postgres(&mut client)
            .unwrap()
            .is_empty()
    );

    let renamed = [up(1, "b", "CREATE TABLE a (x integer);"), ms[1].clone()];
    let err = Migrator::new(&renamed).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(err, Error::Renamed { version: 1, .. }), "{err}");

    let older = [ms[0].clone()];
    let err = Migrator::new(&older).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(err, Error::UnknownApplied { .. }), "{err}");
    assert!(
        Migrator::new(&older)
            .allow_unknown(true)
            .apply_postgres(&mut client)
            .unwrap()
            .is_empty()
    );

    let merged = [ms[0].clone(), up(2, "b", "CREATE TABLE b (x integer);"), ms[1].clone()];
    let err = Migrator::new(&merged).apply_postgres(&mut client).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfOrder {
                version: 2,
                latest_applied: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(versions(&mut client), [1, 3], "refusals change nothing");
    let report = Migrator::new(&merged)
        .allow_out_of_order(true)
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [2]);
    let status = Migrator::new(&merged).status_postgres(&mut client).unwrap();
    assert!(status.entries.iter().all(|e| e.state == State::Applied));
    assert!(Migrator::new(&merged).pending_postgres(&mut client).unwrap().is_empty());
}

/// The head table's rows: (digest, version, migrations).
fn head(client: &mut Client) -> Vec<(String, i64, i64)> {
    client
        .query("SELECT history_digest, version, migrations FROM _migrations_head", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Which tracking rows carry a history digest, oldest first.
fn digests(client: &mut Client) -> Vec<bool> {
    client
        .query(
            "SELECT history_digest IS NOT NULL FROM _migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The one-row start-up check of the history trusts the digest only while
/// the stamped row is the newest and no row was added: a row added below
/// it by hand is still refused, and a forgotten digest means every row is
/// read and verified again (and stamped again by the next migration).
#[test]
fn pg_the_history_digest_covers_exactly_the_rows_it_was_stamped_with() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        up(3, "b", "CREATE TABLE b (x integer);"),
    ];
    Migrator::new(&ms[..1]).apply_postgres(&mut client).unwrap();
    assert_eq!(digests(&mut client), [true]);
    Migrator::new(&ms).apply_postgres(&mut client).unwrap();
    assert_eq!(digests(&mut client), [true, true], "each run stamps its newest row");
    assert!(Migrator::new(&ms).apply_postgres(&mut client).unwrap().is_empty());

    client
        .batch_execute(
            "INSERT INTO _migrations (version, name, checksum, applied_at, duration_ms) VALUES (2, 'z', 'x', now(), 0)",
        )
        .unwrap();
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    assert!(
        matches!(err, Error::UnknownApplied { .. }),
        "a row below the stamped one is seen: {err}"
    );
    client
        .batch_execute("DELETE FROM _migrations WHERE version = 2")
        .unwrap();

    // A stamped start-up is answered by the head table's row without
    // reading the tracking rows; a checksum rewritten by hand (as only
    // `repair` should) is still seen at once, with and without the drift
    // check's statistics: the trigger on the tracking table emptied the
    // head in the edit's transaction, so the rows are read and the edit
    // refused.
    assert!(
        head(&mut client).is_empty(),
        "the row added and deleted by hand emptied the head"
    );
    let original: String = client
        .query_one("SELECT checksum FROM _migrations WHERE version = 1", &[])
        .unwrap()
        .get(0);
    client
        .batch_execute("UPDATE _migrations SET checksum = 'edited' WHERE version = 1")
        .unwrap();
    assert!(head(&mut client).is_empty(), "the edit emptied the head");
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(err, Error::Modified { .. }), "read row by row: {err}");
    let err = Migrator::new(&ms)
        .drift(migrate_runtime::DriftPolicy::Off)
        .apply_postgres(&mut client)
        .unwrap_err();
    assert!(matches!(err, Error::Modified { .. }), "read row by row: {err}");
    client
        .execute("UPDATE _migrations SET checksum = $1 WHERE version = 1", &[&original])
        .unwrap();

    Migrator::new(&ms).forget_history_digest_postgres(&mut client).unwrap();
    assert_eq!(digests(&mut client), [false, false]);
    assert!(
        Migrator::new(&ms).apply_postgres(&mut client).unwrap().is_empty(),
        "verified row by row"
    );
    let more = [ms[0].clone(), ms[1].clone(), up(4, "c", "CREATE TABLE c (x integer);")];
    Migrator::new(&more).apply_postgres(&mut client).unwrap();
    assert_eq!(digests(&mut client), [false, false, true]);
    // A migrate_to below the newest leaves a history that is not the
    // code's: no digest on its newest row.
    let downs = [
        updown(1, "a", "CREATE TABLE a (x integer);", "DROP TABLE a;"),
        updown(3, "b", "CREATE TABLE b (x integer);", "DROP TABLE b;"),
        updown(4, "c", "CREATE TABLE c (x integer);", "DROP TABLE c;"),
    ];
    Migrator::new(&downs).migrate_to_postgres(&mut client, 3).unwrap();
    assert_eq!(digests(&mut client), [false, false]);
    Migrator::new(&downs).apply_postgres(&mut client).unwrap();
    assert_eq!(digests(&mut client), [false, false, true]);
}

/// Whether `client`'s database has the table `name` in `public`.
fn has_table(client: &mut Client, name: &str) -> bool {
    tables(client, "public").iter().any(|t| t == name)
}

/// A start-up with the history unchanged reads the head table's one row
/// and never the tracking table (it succeeds while another session holds
/// the tracking table exclusively); a database from before the head table
/// is read row by row and gets its head with the next run that applies a
/// migration; another role that may write the tracking table but not the
/// head still empties it (the trigger's function runs as the owner), and
/// the next start-up then reads the rows and sees what it changed.
#[test]
fn pg_the_head_table_answers_start_ups_and_any_change_to_the_history_empties_it() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        up(3, "b", "CREATE TABLE b (x integer);"),
    ];
    Migrator::new(&ms[..1]).apply_postgres(&mut client).unwrap();
    assert_eq!(head(&mut client).len(), 1);
    // As an older release left it: no head table, no trigger.
    client
        .batch_execute("DROP TABLE _migrations_head; DROP FUNCTION _migrations_head_clear() CASCADE")
        .unwrap();
    assert!(Migrator::new(&ms[..1]).apply_postgres(&mut client).unwrap().is_empty());
    assert!(!has_table(&mut client, "_migrations_head"), "a start-up writes nothing");
    Migrator::new(&ms).apply_postgres(&mut client).unwrap();
    let rows = head(&mut client);
    assert_eq!(rows.iter().map(|r| (r.1, r.2)).collect::<Vec<_>>(), [(3, 2)]);
    assert_eq!(rows[0].0.len(), 32, "the digest in hex: {rows:?}");

    // Two start-ups record the drift check's statistics; then, with the
    // tracking table locked by another session, start-ups with and without
    // the drift check are answered from the head (a read of the tracking
    // table would wait, and fail at the lock timeout).
    for _ in 0..2 {
        assert!(Migrator::new(&ms).apply_postgres(&mut client).unwrap().is_empty());
    }
    let mut other = db.client();
    let mut locked = other.transaction().unwrap();
    locked
        .batch_execute("LOCK TABLE _migrations IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    client.batch_execute("SET lock_timeout = '3s'").unwrap();
    for drift in [migrate_runtime::DriftPolicy::Off, migrate_runtime::DriftPolicy::Error] {
        let report = Migrator::new(&ms).drift(drift).apply_postgres(&mut client);
        assert!(report.unwrap().is_empty(), "{drift:?}");
    }
    locked.rollback().unwrap();
    client.batch_execute("RESET lock_timeout").unwrap();

    // A role granted the tracking table alone deletes a row.
    let Some((url, role)) = unprivileged_url(&db) else {
        return;
    };
    client
        .batch_execute(&format!("GRANT SELECT, INSERT, DELETE ON _migrations TO \"{role}\""))
        .unwrap();
    let callable: bool = client
        .query_one(
            "SELECT has_function_privilege($1, '_migrations_head_clear()', 'EXECUTE')",
            &[&role],
        )
        .unwrap()
        .get(0);
    assert!(!callable, "only the owner may call the trigger's function");
    let mut writer = Client::connect(&url, migrate_runtime::postgres::NoTls).unwrap();
    writer
        .batch_execute("DELETE FROM _migrations WHERE version = 3")
        .unwrap();
    drop(writer);
    assert!(head(&mut client).is_empty(), "the deletion emptied the head");
    let pending = Migrator::new(&ms).pending_postgres(&mut client).unwrap();
    assert_eq!(pending.iter().map(|m| m.version()).collect::<Vec<_>>(), [3]);
    let err = Migrator::new(&ms)
        .drift(migrate_runtime::DriftPolicy::Off)
        .apply_postgres(&mut client)
        .unwrap_err();
    assert!(
        err.to_string().contains("\"b\" already exists"),
        "read row by row, so 3 ran again: {err}"
    );
    drop_role(&mut client, &role);
}

/// A tracking table dropped with `CASCADE` (which takes its trigger, not
/// the head table) and made again by hand is another table: the head's
/// row, written for the old one, is not trusted, and an edit made in the
/// new one is refused.
#[test]
fn pg_the_head_is_not_trusted_for_a_tracking_table_made_again() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [up(1, "a", "CREATE TABLE a (x integer);")];
    Migrator::new(&ms).apply_postgres(&mut client).unwrap();
    client
        .batch_execute(
            "CREATE TABLE keep AS SELECT * FROM _migrations; DROP TABLE _migrations CASCADE; \
             CREATE TABLE _migrations (LIKE keep INCLUDING ALL); INSERT INTO _migrations SELECT * FROM keep; \
             DROP TABLE keep; UPDATE _migrations SET checksum = 'edited' WHERE version = 1",
        )
        .unwrap();
    assert_eq!(head(&mut client).len(), 1, "nothing emptied the head");
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(err, Error::Modified { .. }), "{err}");
    client.batch_execute("DROP TABLE _migrations").unwrap();
    let report = Migrator::new(&ms).apply_postgres(&mut client);
    assert!(
        report.unwrap_err().to_string().contains("\"a\" already exists"),
        "no tracking table: every migration is pending, however the head reads"
    );
}

/// A start-up trusts the head only while the name finds the tracking
/// table it was written for: the head asks the server to print that table
/// by its OID, so a tracking table renamed (another made under its name by
/// hand, without the trigger) or hidden by a temporary table of the same
/// name is seen, and the rows are read. A head written before its
/// `tracking_name` column, or a row without it, is read by the OID, as
/// before. What shows trust
/// is an edit hidden from the trigger (`DISABLE TRIGGER`): a trusted head
/// does not see it, a read of the rows refuses it.
#[test]
fn pg_the_head_is_not_trusted_for_a_tracking_table_renamed_or_hidden_and_an_old_head_is_read_by_oid() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [up(1, "a", "CREATE TABLE a (x integer);")];
    Migrator::new(&ms).apply_postgres(&mut client).unwrap();
    let printed: String = client
        .query_one("SELECT tracking_name::text FROM _migrations_head", &[])
        .unwrap()
        .get(0);
    assert_eq!(printed, "_migrations");
    client
        .batch_execute(
            "ALTER TABLE _migrations DISABLE TRIGGER USER; UPDATE _migrations SET checksum = 'edited'; \
             ALTER TABLE _migrations ENABLE TRIGGER USER",
        )
        .unwrap();
    Migrator::new(&ms)
        .apply_postgres(&mut client)
        .expect("the head is trusted");
    client
        .batch_execute("ALTER TABLE _migrations_head DROP COLUMN tracking_name")
        .unwrap();
    Migrator::new(&ms)
        .apply_postgres(&mut client)
        .expect("a head without the column is trusted by the OID");
    client
        .batch_execute(
            "ALTER TABLE _migrations_head ADD COLUMN tracking_name regclass; \
             UPDATE _migrations_head SET tracking_name = tracking",
        )
        .unwrap();
    Migrator::new(&ms)
        .apply_postgres(&mut client)
        .expect("trusted by name again");
    client
        .batch_execute("UPDATE _migrations_head SET tracking_name = NULL")
        .unwrap();
    Migrator::new(&ms)
        .apply_postgres(&mut client)
        .expect("a row an earlier release wrote, without the name, is trusted by the OID");
    client
        .batch_execute("UPDATE _migrations_head SET tracking_name = tracking")
        .unwrap();

    client
        .batch_execute(
            "ALTER TABLE _migrations RENAME TO old_migrations; \
             CREATE TABLE _migrations (LIKE old_migrations INCLUDING ALL); \
             INSERT INTO _migrations SELECT * FROM old_migrations",
        )
        .unwrap();
    assert_eq!(head(&mut client).len(), 1, "nothing emptied the head");
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(err, Error::Modified { .. }), "{err}");

    client
        .batch_execute("DROP TABLE _migrations; ALTER TABLE old_migrations RENAME TO _migrations")
        .unwrap();
    Migrator::new(&ms)
        .apply_postgres(&mut client)
        .expect("the same table under its name again");
    client
        .batch_execute(
            "CREATE TEMPORARY TABLE _migrations (LIKE public._migrations INCLUDING ALL); \
             INSERT INTO pg_temp._migrations SELECT * FROM public._migrations",
        )
        .unwrap();
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    assert!(
        matches!(err, Error::Modified { .. }),
        "a temporary table hides it: {err}"
    );
}

/// A run that applies a migration to a database whose head already has
/// every column writes the head without a lock that other processes'
/// start-ups (which read it) would wait for until the run commits: a
/// trigger on the head, fired by the run's own row, notes the locks its
/// transaction holds on the head at that moment.
#[test]
fn pg_a_run_writes_an_existing_head_without_a_lock_that_start_ups_wait_for() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        up(2, "b", "CREATE TABLE b (x integer);"),
    ];
    Migrator::new(&ms[..1]).apply_postgres(&mut client).unwrap();
    client
        .batch_execute(
            "CREATE TABLE head_locks (mode text); \
             CREATE FUNCTION note_head_locks() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             INSERT INTO head_locks SELECT mode FROM pg_locks \
             WHERE pid = pg_backend_pid() AND relation = '_migrations_head'::regclass; RETURN NULL; END $$; \
             CREATE TRIGGER note_head_locks AFTER INSERT ON _migrations_head \
             FOR EACH STATEMENT EXECUTE FUNCTION note_head_locks()",
        )
        .unwrap();
    Migrator::new(&ms)
        .drift(migrate_runtime::DriftPolicy::Off)
        .apply_postgres(&mut client)
        .unwrap();
    let modes: Vec<String> = client
        .query("SELECT mode FROM head_locks", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        modes.contains(&"RowExclusiveLock".to_owned()),
        "the run wrote the head: {modes:?}"
    );
    assert!(!modes.iter().any(|m| m == "AccessExclusiveLock"), "{modes:?}");
    assert_eq!(head(&mut client).len(), 1);
}

/// On a server without PL/pgSQL (no trigger function can be written) the
/// head table is not made: migrations apply as before, and start-ups read
/// the tracking table.
#[test]
fn pg_without_plpgsql_there_is_no_head_and_start_ups_read_the_rows() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    if let Err(e) = client.batch_execute("DROP EXTENSION plpgsql") {
        assert!(db.server().dir.is_none(), "our own cluster's superuser drops it: {e}");
        eprintln!("SKIPPED: this server's role may not drop plpgsql: {e}");
        return;
    }
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        up(2, "b", "CREATE TABLE b (x integer);"),
    ];
    let report = Migrator::new(&ms).apply_postgres(&mut client).unwrap();
    assert_eq!(report.applied().count(), 2);
    assert_eq!(tables(&mut client, "public"), ["_migrations", "a", "b"]);
    assert_eq!(
        digests(&mut client),
        [false, true],
        "the tracking table's digest is still stamped"
    );
    assert!(Migrator::new(&ms).apply_postgres(&mut client).unwrap().is_empty());
    client
        .batch_execute("UPDATE _migrations SET checksum = 'edited' WHERE version = 1")
        .unwrap();
    Migrator::new(&ms).forget_history_digest_postgres(&mut client).unwrap();
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(err, Error::Modified { .. }), "{err}");
}

#[test]
fn pg_status_and_pending_on_a_fresh_database_change_nothing() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [up(1, "a", "CREATE TABLE a (x integer);")];
    let status = Migrator::new(&ms).status_postgres(&mut client).unwrap();
    assert_eq!(status.pending().count(), 1);
    assert_eq!(Migrator::new(&ms).pending_postgres(&mut client).unwrap().len(), 1);
    assert!(tables(&mut client, "public").is_empty(), "reading creates nothing");
}

#[test]
fn pg_migrate_to_goes_down_newest_first_and_refuses_irreversible_before_touching_anything() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        updown(2, "b", "CREATE TABLE b (x integer);", "DROP TABLE b;"),
        updown(3, "c", "CREATE TABLE c (x integer);", "DROP TABLE c;"),
    ];
    let m = Migrator::new(&ms);
    m.apply_postgres(&mut client).unwrap();
    let report = m.migrate_to_postgres(&mut client, 1).unwrap();
    let down: Vec<_> = report.rolled_back().map(|s| s.version).collect();
    assert_eq!(down, [3, 2]);
    assert!(report.steps.iter().all(|s| s.direction == Direction::Down));
    assert_eq!(versions(&mut client), [1]);
    assert_eq!(tables(&mut client, "public"), ["_migrations", "_migrations_head", "a"]);
    let err = m.migrate_to_postgres(&mut client, 0).unwrap_err();
    assert!(matches!(err, Error::Irreversible { version: 1, .. }), "{err}");
    assert_eq!(versions(&mut client), [1]);
    let report = m.migrate_to_postgres(&mut client, 3).unwrap();
    assert_eq!(report.applied().count(), 2);
    assert!(matches!(
        m.migrate_to_postgres(&mut client, 7),
        Err(Error::UnknownTarget { .. })
    ));
}

#[test]
fn pg_grouped_mode_is_all_or_nothing() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        up(2, "b", "CREATE TABLE b (x integer);"),
        up(3, "bad", "CREATE TABLE c (x nosuchtype);"),
    ];
    let err = Migrator::new(&ms)
        .grouped(true)
        .apply_postgres(&mut client)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Sql {
                version: 3,
                line: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(tables(&mut client, "public").is_empty(), "nothing of the group stays");
    let ok = &ms[..2];
    let report = Migrator::new(ok).grouped(true).apply_postgres(&mut client).unwrap();
    assert_eq!(report.applied().count(), 2);
    assert_eq!(versions(&mut client), [1, 2]);
    let with_nt = [
        ms[0].clone(),
        ms[1].clone(),
        no_tx(up(3, "idx", "CREATE INDEX CONCURRENTLY i ON a (x);")),
    ];
    let err = Migrator::new(&with_nt)
        .grouped(true)
        .apply_postgres(&mut client)
        .unwrap_err();
    assert!(matches!(err, Error::NoTransactionInGroup { version: 3, .. }), "{err}");
}

#[test]
fn pg_create_index_concurrently_runs_outside_a_transaction_under_a_released_session_lock() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(
            1,
            "a",
            "CREATE TABLE a (x integer, y text);\nINSERT INTO a SELECT g, g::text FROM generate_series(1, 1000) g;",
        ),
        no_tx(up(
            2,
            "index_a",
            "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY a_x ON a (x);\n\nCREATE INDEX CONCURRENTLY a_y ON a (y);\n",
        )),
        up(3, "after", "CREATE TABLE b (x integer);"),
    ];
    let report = Migrator::new(&ms).apply_postgres(&mut client).unwrap();
    assert_eq!(report.applied().count(), 3);
    let indexes: i64 = client
        .query_one("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('a_x', 'a_y') AND i.indisvalid", &[])
        .unwrap()
        .get(0);
    assert_eq!(indexes, 2);
    assert_eq!(versions(&mut client), [1, 2, 3]);
    assert!(lock_is_free(&db, "_migrations"));

    // A failing statement: the ones before it stay, the line is named,
    // the session lock is released and the connection is usable.
    let bad = [
        ms[0].clone(),
        ms[1].clone(),
        ms[2].clone(),
        no_tx(up(
            4,
            "bad_index",
            "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY b_x ON b (x);\nCREATE INDEX CONCURRENTLY b_z ON b (z);\n",
        )),
    ];
    let err = Migrator::new(&bad).apply_postgres(&mut client).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "migrations/0004_bad_index.up.sql:3: up migration 4 `bad_index` failed: column \"z\" does not exist"
        ),
        "{text}"
    );
    assert!(text.contains("outside a transaction"), "{text}");
    assert!(
        lock_is_free(&db, "_migrations"),
        "the session lock is released after an error"
    );
    assert_eq!(versions(&mut client), [1, 2, 3]);
    client.batch_execute("SELECT 1").unwrap();
    let held = advisory_locks_held(&mut client);
    assert_eq!(held, 0);
}

#[test]
fn pg_a_failed_migration_on_a_reused_connection_does_not_keep_the_lock() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let bad = [up(1, "bad", "CREATE TABLE t (x integer);\nSELECT 1/0;")];
    Migrator::new(&bad).apply_postgres(&mut client).unwrap_err();
    // The app keeps the connection open and goes on: it holds no advisory
    // lock, and another process migrates without waiting for one.
    let held = advisory_locks_held(&mut client);
    assert_eq!(held, 0, "the failed run's connection keeps no lock");
    let good = [up(1, "good", "CREATE TABLE t (x integer);")];
    let mut other = db.client();
    let report = Migrator::new(&good)
        .lock_timeout(Duration::from_secs(5))
        .apply_postgres(&mut other)
        .unwrap();
    assert_eq!(report.waited, None, "the other process did not wait");
    client.batch_execute("SELECT 1").unwrap();
}

#[test]
fn pg_waits_for_the_lock_and_times_out_clearly() {
    let Some(db) = pg_database!() else { return };
    let mut holder = db.client();
    let key = advisory_key("public._migrations");
    holder.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
    let ms = [up(1, "a", "CREATE TABLE a (x integer);")];
    let mut client = db.client();
    let err = Migrator::new(&ms)
        .lock_timeout(Duration::from_millis(300))
        .apply_postgres(&mut client)
        .unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("raise the lock timeout"), "{err}");
    assert!(
        tables(&mut client, "public").is_empty(),
        "nothing is created while locked out"
    );
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        holder.execute("SELECT pg_advisory_unlock($1)", &[&key]).unwrap();
    });
    let report = Migrator::new(&ms)
        .lock_timeout(Duration::from_secs(10))
        .apply_postgres(&mut client)
        .unwrap();
    release.join().unwrap();
    assert!(
        report.waited.is_some_and(|w| w >= Duration::from_millis(200)),
        "{report:?}"
    );
    assert_eq!(report.applied().count(), 1);
    // The connection's own lock_timeout is as it was.
    let timeout: String = client.query_one("SHOW lock_timeout", &[]).unwrap().get(0);
    assert_eq!(timeout, "0");
}

#[test]
fn pg_lock_table_mode_uses_a_row_lock() {
    let Some(db) = pg_database!() else { return };
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        up(2, "b", "CREATE TABLE b (x integer);"),
    ];
    let mut client = db.client();
    let m = Migrator::new(&ms[..1])
        .lock(Lock::Table)
        .lock_timeout(Duration::from_millis(300));
    m.apply_postgres(&mut client).unwrap();
    assert_eq!(
        tables(&mut client, "public"),
        ["_migrations", "_migrations_head", "_migrations_lock", "a"]
    );
    // Another session holds the lock row: the run waits, then times out.
    let mut holder = db.client();
    holder
        .batch_execute("BEGIN; SELECT * FROM _migrations_lock WHERE id = 1 FOR UPDATE")
        .unwrap();
    let all = Migrator::new(&ms)
        .lock(Lock::Table)
        .lock_timeout(Duration::from_millis(300));
    let err = all.apply_postgres(&mut client).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    // No advisory lock is involved.
    let advisory = advisory_key("public._migrations");
    let free: bool = holder
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&advisory])
        .unwrap()
        .get(0);
    assert!(free);
    holder.batch_execute("COMMIT").unwrap();
    assert_eq!(all.apply_postgres(&mut client).unwrap().applied().count(), 1);
    // A no-transaction script runs under the lease, which is cleared after
    // it, and after a failure too.
    let nt = [
        ms[0].clone(),
        ms[1].clone(),
        no_tx(up(3, "idx", "CREATE INDEX CONCURRENTLY ai ON a (x);")),
    ];
    Migrator::new(&nt)
        .lock(Lock::Table)
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!(versions(&mut client), [1, 2, 3]);
    let lease = |client: &mut Client| -> Option<String> {
        client
            .query_one("SELECT holder FROM _migrations_lock WHERE id = 1", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(lease(&mut client), None);
    let bad = [
        nt[0].clone(),
        nt[1].clone(),
        nt[2].clone(),
        no_tx(up(4, "bad", "CREATE INDEX CONCURRENTLY bi ON a (nope);")),
    ];
    let err = Migrator::new(&bad)
        .lock(Lock::Table)
        .apply_postgres(&mut client)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Sql {
                version: 4,
                line: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(lease(&mut client), None, "the lease is cleared after a failure");
    // A lease of a session that still exists keeps others waiting; one of a
    // session that is gone does not.
    let mut holder = db.client();
    let me: String = holder
        .query_one("SELECT pg_backend_pid()::text || '/' || backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    client
        .execute("UPDATE _migrations_lock SET holder = $1 WHERE id = 1", &[&me])
        .unwrap();
    let four = [
        bad[0].clone(),
        bad[1].clone(),
        bad[2].clone(),
        up(4, "d", "CREATE TABLE d (x integer);"),
    ];
    let waiting = Migrator::new(&four)
        .lock(Lock::Table)
        .lock_timeout(Duration::from_millis(300));
    assert!(matches!(waiting.apply_postgres(&mut client), Err(Error::Locked { .. })));
    drop(holder);
    std::thread::sleep(Duration::from_millis(300));
    let report = Migrator::new(&four)
        .lock(Lock::Table)
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!(report.applied().count(), 1, "a dead session's lease is ignored");
}

#[test]
fn pg_schema_holds_the_tracking_table_and_the_migrations_objects() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(1, "a", "CREATE TABLE a (x integer);"),
        updown(2, "b", "CREATE TABLE b (x integer);", "DROP TABLE b;"),
    ];
    let m = Migrator::new(&ms).schema("app");
    m.apply_postgres(&mut client).unwrap();
    assert_eq!(
        tables(&mut client, "app"),
        ["_migrations", "_migrations_head", "a", "b"]
    );
    assert!(tables(&mut client, "public").is_empty());
    assert_eq!(versions_in(&mut client, "app._migrations"), [1, 2]);
    let path: String = client.query_one("SHOW search_path", &[]).unwrap().get(0);
    assert_eq!(path, "\"$user\", public", "search_path is restored");
    // A second app in the same database has its own history and lock.
    let other = [up(1, "other", "CREATE TABLE other (x integer);")];
    Migrator::new(&other)
        .schema("billing")
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!(
        tables(&mut client, "billing"),
        ["_migrations", "_migrations_head", "other"]
    );
    assert!(m.apply_postgres(&mut client).unwrap().is_empty());
    m.migrate_to_postgres(&mut client, 1).unwrap();
    assert_eq!(tables(&mut client, "app"), ["_migrations", "_migrations_head", "a"]);
    // Also in lock table mode, with the lock table in the schema.
    let third = [up(1, "t", "CREATE TABLE t (x integer);")];
    Migrator::new(&third)
        .schema("third")
        .lock(Lock::Table)
        .apply_postgres(&mut client)
        .unwrap();
    assert_eq!(
        tables(&mut client, "third"),
        ["_migrations", "_migrations_head", "_migrations_lock", "t"]
    );
    // SQLite refuses the PostgreSQL-only settings.
    let mut sqlite = migrate_runtime::rusqlite::Connection::open_in_memory().unwrap();
    let err = Migrator::new(&ms).schema("app").apply(&mut sqlite).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    let err = Migrator::new(&ms).lock(Lock::Table).apply(&mut sqlite).unwrap_err();
    assert!(err.to_string().contains("not supported"), "{err}");
}

#[test]
fn pg_splitting_dollar_quotes_escape_strings_comments_and_atomic_bodies() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    // Run outside a transaction, so statement by statement through the splitter.
    let script = r#"-- migrate:no-transaction
/* a /* nested; */ comment; */
CREATE TABLE notes (body text);
CREATE FUNCTION shout(t text) RETURNS text LANGUAGE plpgsql AS $fn$
BEGIN
    RETURN upper(t) || '; ' || $$!$$;
END;
$fn$;
INSERT INTO notes VALUES (E'it\'s; fine'), ('C:\');
CREATE FUNCTION add(a integer, b integer) RETURNS integer LANGUAGE sql
BEGIN ATOMIC
    SELECT CASE WHEN a > 0 THEN a ELSE 0 END + b;
END;
CREATE INDEX CONCURRENTLY notes_body ON notes (body);
SELECT no_such_function();
"#;
    let ms = [no_tx(up(1, "mixed", script))];
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(err, Error::Sql { line: 15, .. }), "{err}");
    let shout: String = client.query_one("SELECT shout('a')", &[]).unwrap().get(0);
    assert_eq!(shout, "A; !");
    let sum: i32 = client.query_one("SELECT add(2, 3)", &[]).unwrap().get(0);
    assert_eq!(sum, 5);
    let notes: i64 = client.query_one("SELECT count(*) FROM notes", &[]).unwrap().get(0);
    assert_eq!(notes, 2);
}

#[test]
fn pg_an_index_left_invalid_by_a_failed_concurrent_build_is_named_and_reported_at_the_next_run_and_by_status() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let ms = [
        up(1, "t", "CREATE TABLE t (x integer);\nINSERT INTO t VALUES (1), (1);"),
        no_tx(up(2, "unique_x", "CREATE UNIQUE INDEX CONCURRENTLY t_x ON t (x);")),
    ];
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("could not create unique index \"t_x\""), "{text}");
    assert!(
        text.contains("it left public.t_x INVALID: drop it with DROP INDEX CONCURRENTLY before running again"),
        "{text}"
    );
    let status = Migrator::new(&ms).status_postgres(&mut client).unwrap();
    assert_eq!(status.invalid_indexes, ["public.t_x"]);
    let seen = std::cell::RefCell::new(Vec::new());
    let only_first = &ms[..1];
    let report = Migrator::new(only_first)
        .on_event(|e| {
            if let migrate_runtime::Event::InvalidIndexes { indexes } = e {
                seen.borrow_mut().extend(indexes.iter().cloned());
            }
        })
        .apply_postgres(&mut client)
        .unwrap();
    assert!(report.is_empty());
    assert_eq!(*seen.borrow(), ["public.t_x"], "reported at the next start-up");
    client.batch_execute("DROP INDEX CONCURRENTLY t_x").unwrap();
    let status = Migrator::new(&ms).status_postgres(&mut client).unwrap();
    assert!(status.invalid_indexes.is_empty());
}

/// `cargo migrate ARGS` in `pkg` against `url` (DATABASE_URL): (exit
/// code, stdout, stderr).
fn cli(pkg: &tests::Package, url: &str, args: &[&str]) -> (i32, String, String) {
    let out = pkg.migrate().args(args).env("DATABASE_URL", url).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pg_cli_status_up_down_redo() {
    let Some(db) = pg_database!() else { return };
    let pkg = tests::Package::new();
    pkg.write(
        "migrations/0001_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n",
    );
    pkg.write("migrations/0001_users.down.sql", "DROP TABLE users;\n");
    pkg.write(
        "migrations/0002_posts.up.sql",
        "CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint REFERENCES users);\n",
    );
    pkg.write("migrations/0002_posts.down.sql", "DROP TABLE posts;\n");
    // The URL with a password, which is never shown.
    let url = db
        .url
        .replacen("postgres://postgres@", "postgres://postgres:s3cret@", 1);
    let (code, out, err) = cli(&pkg, &url, &["status"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("pending"), "{out}");
    assert!(
        err.contains("postgres://postgres:***@") && !err.contains("s3cret"),
        "{err}"
    );
    assert!(err.contains("0 applied, 2 pending"), "{err}");

    let (code, out, _) = cli(&pkg, &url, &["up", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(out.contains("CREATE TABLE posts"), "{out}");
    let mut client = db.client();
    assert!(tables(&mut client, "public").is_empty(), "a dry run changes nothing");

    let (code, _, err) = cli(&pkg, &url, &["up", "--to", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(versions(&mut client), [1]);
    let (code, _, err) = cli(&pkg, &url, &["up"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied 1 migration"), "{err}");
    assert!(err.contains("the database is at version 0002 posts"), "{err}");
    assert_eq!(versions(&mut client), [1, 2]);

    let (code, out, err) = cli(&pkg, &url, &["status", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"up_to_date\":true"), "{out}");

    let (code, _, err) = cli(&pkg, &url, &["redo"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("redid 0002"), "{err}");
    assert_eq!(versions(&mut client), [1, 2]);

    let (code, _, err) = cli(&pkg, &url, &["down", "--steps", "2"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("rolled back 2 migrations"), "{err}");
    assert!(versions(&mut client).is_empty());
    assert_eq!(tables(&mut client, "public"), ["_migrations", "_migrations_head"]);

    // A failing migration: file, line and the server's message; exit 1.
    pkg.write(
        "migrations/0003_bad.up.sql",
        "CREATE TABLE ok (x integer);\nSELECT nope FROM ok;\n",
    );
    pkg.write("migrations/0003_bad.down.sql", "DROP TABLE ok;\n");
    let (code, _, err) = cli(&pkg, &url, &["up"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("migrations/0003_bad.up.sql:2: up migration 3 `bad` failed: column \"nope\" does not exist"),
        "{err}"
    );
    assert_eq!(versions(&mut client), [1, 2]);

    // A database that does not exist, and a server that is not there.
    let missing = db.server().url_for("no_such_database");
    let (code, _, err) = cli(&pkg, &missing, &["status"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("does not exist") && err.contains("create it (cargo migrate database create, or createdb)"),
        "{err}"
    );
}

/// The `main.rs` of a PostgreSQL testbox: applies the generated module to
/// `DATABASE_URL` and prints the report.
const PG_MAIN_RS: &str = r#"mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

fn main() {
    use migrate_runtime::postgres::{Client, NoTls};
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let mut client = Client::connect(&url, NoTls).expect("connect");
    match migrations::apply(&mut client) {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
"#;

#[test]
fn pg_testbox_a_postgres_only_app_is_checked_at_build_time_without_a_server_and_migrates_at_start_up() {
    let Some(db) = pg_database!() else { return };
    let pkg = tests::Package::postgres("testbox", r#""postgres""#, "", "schema = \"app\"\n");
    pkg.write("src/main.rs", PG_MAIN_RS);
    pkg.write(
        "migrations/0001_users.up.sql",
        "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL);\nCREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n    RETURN NEW;\nEND;\n$$;\n",
    );
    pkg.write(
        "migrations/0001_users.down.sql",
        "DROP TABLE users;\nDROP FUNCTION touch();\n",
    );
    pkg.write(
        "migrations/0002_users_email.sql",
        "-- migrate:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email);\n",
    );
    // A dollar quote left open fails the build, with its file and line.
    pkg.write(
        "migrations/0003_broken.sql",
        "SELECT 1;\nDO $body$ BEGIN PERFORM 1; END $bodi$;\n",
    );
    let (ok, stderr) = pkg.build();
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("migrations/0003_broken.sql:2: a $$ dollar quote $$ that is never closed"),
        "{stderr}"
    );
    std::fs::remove_file(pkg.path().join("migrations/0003_broken.sql")).unwrap();
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    // PostgreSQL only: the app compiles no SQLite.
    let tree = pkg.cargo(&["tree", "-e", "normal", "--prefix", "none"]);
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.contains("postgres v") && !tree.contains("sqlite"), "{tree}");
    let exe = tests::testbox_target().join("debug").join("testbox");
    let run = |url: &str| Command::new(&exe).env("DATABASE_URL", url).output().unwrap();
    let out = run(&db.url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("applied 1 users") && stdout.contains("applied 2 users_email"),
        "{stdout}"
    );
    let mut client = db.client();
    assert_eq!(versions_in(&mut client, "app._migrations"), [1, 2]);
    assert_eq!(
        tables(&mut client, "app"),
        ["_migrations", "_migrations_head", "users"],
        "the config's schema"
    );
    let again = run(&db.url);
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));

    // With a check server, every migration and round trip is replayed in a
    // scratch database that is dropped afterwards.
    let server = db.server().url_for("postgres");
    let check = |pkg: &tests::Package| {
        let out = pkg.cargo_env(&["build", "--quiet"], &[("MIGRATE_CHECK_DATABASE_URL", &server)]);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    pkg.write(
        "migrations/0003_posts.up.sql",
        "CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint NOT NULL);\nCREATE INDEX posts_user ON posts (user_id);\n",
    );
    pkg.write("migrations/0003_posts.down.sql", "DROP INDEX posts_user;\n");
    let (ok, stderr) = check(&pkg);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("migrations/0003_posts.down.sql:1: the down migration does not undo its up: it leaves column app.posts.id bigint NO"),
        "{stderr}"
    );
    pkg.write("migrations/0003_posts.down.sql", "DROP TABLE posts;\n");
    pkg.write(
        "migrations/0004_bad.sql",
        "SELECT 1;\n\nALTER TABLE nope ADD COLUMN x integer;\n",
    );
    let (ok, stderr) = check(&pkg);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("migrations/0004_bad.sql:3: up migration 4 `bad` fails: relation \"nope\" does not exist"),
        "{stderr}"
    );
    std::fs::remove_file(pkg.path().join("migrations/0004_bad.sql")).unwrap();
    let (ok, stderr) = check(&pkg);
    assert!(ok, "{stderr}");
    let mut admin = migrate_runtime::postgres::Client::connect(&server, migrate_runtime::postgres::NoTls).unwrap();
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'migrate\\_check\\_%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the scratch databases are dropped");
}

#[test]
fn pg_no_permission_for_the_tracking_table_or_schema_is_a_clear_error_and_changes_nothing() {
    let Some(db) = pg_database!() else { return };
    let Some((url, role)) = unprivileged_url(&db) else {
        return;
    };
    let mut owner = db.client();
    let mut client = migrate_runtime::postgres::Client::connect(&url, migrate_runtime::postgres::NoTls).unwrap();
    let ms = [up(1, "a", "CREATE TABLE a (x integer);")];
    let err = Migrator::new(&ms).apply_postgres(&mut client).unwrap_err();
    assert!(matches!(err, Error::Postgres { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("creating the tracking table \"_migrations\": permission denied for schema public (SQLSTATE 42501); the role lacks a privilege"),
        "{text}"
    );
    let err = Migrator::new(&ms)
        .schema("app")
        .apply_postgres(&mut client)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("permission denied for database"), "{text}");
    assert!(tables(&mut owner, "public").is_empty());
    client.batch_execute("SELECT 1").unwrap();
    drop(client);
    drop_role(&mut owner, &role);
}

#[test]
fn pg_cli_renumber_keeps_what_the_database_applied() {
    let Some(db) = pg_database!() else { return };
    let pkg = tests::Package::new();
    pkg.write(
        "migrations/0001_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    pkg.write(
        "migrations/0002_teams.sql",
        "CREATE TABLE teams (id bigint PRIMARY KEY);\n",
    );
    let (code, _, err) = cli(&pkg, &db.url, &["up"]);
    assert_eq!(code, 0, "{err}");
    // Another branch's 0002, merged after 0002 was applied.
    pkg.write(
        "migrations/0002_add_email.sql",
        "ALTER TABLE users ADD COLUMN email text;\n",
    );
    let (code, _, err) = cli(&pkg, &db.url, &["renumber"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0002 add_email → 0003"), "{err}");
    let (code, _, err) = cli(&pkg, &db.url, &["up"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(versions(&mut db.client()), [1, 2, 3]);
}

#[test]
fn pg_a_migration_queued_behind_a_long_query_times_out_retries_and_says_so() {
    let Some(db) = pg_database!() else { return };
    let mut client = db.client();
    let base = [up(1, "t", "CREATE TABLE t (x integer);")];
    Migrator::new(&base).apply_postgres(&mut client).unwrap();
    // A long read holds a lock that ALTER TABLE must wait for.
    let mut reader = db.client();
    reader.batch_execute("BEGIN; SELECT * FROM t").unwrap();
    let ms = [
        base[0].clone(),
        up(
            2,
            "add_y",
            "CREATE TABLE other (x integer);\nALTER TABLE t ADD COLUMN y integer;\n",
        ),
    ];
    let start = Instant::now();
    let err = Migrator::new(&ms)
        .table_lock_timeout(Duration::from_millis(100), 2)
        .apply_postgres(&mut client)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("migrations/0002_add_y.up.sql:2: up migration 2 `add_y` failed: canceling statement due to lock timeout (SQLSTATE 55P03)"),
        "{text}"
    );
    assert!(
        text.contains("a lock timeout: tried 3 times, waiting 100 ms each time"),
        "{text}"
    );
    assert!(
        text.ends_with("run it when the table is quiet, or allow more time or tries"),
        "{text}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(versions(&mut client), [1]);
    assert_eq!(
        tables(&mut client, "public"),
        ["_migrations", "_migrations_head", "t"],
        "rolled back whole"
    );
    // The reader finishes during the retries: the migration goes through.
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(250));
        reader.batch_execute("COMMIT").unwrap();
    });
    let report = Migrator::new(&ms)
        .table_lock_timeout(Duration::from_millis(100), 10)
        .apply_postgres(&mut client)
        .unwrap();
    release.join().unwrap();
    assert_eq!(report.applied().count(), 1);
    // The connection's own lock_timeout is untouched.
    let timeout: String = client.query_one("SHOW lock_timeout", &[]).unwrap().get(0);
    assert_eq!(timeout, "0");
    let mut sqlite = migrate_runtime::rusqlite::Connection::open_in_memory().unwrap();
    let err = Migrator::new(&ms)
        .table_lock_timeout(Duration::from_secs(1), 1)
        .apply(&mut sqlite)
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

fn worker() -> &'static str {
    env!("CARGO_BIN_EXE_migrate-worker")
}

/// A migrations directory of `n` migrations, each slow enough that the
/// workers overlap.
fn slow_dir(n: u64) -> tempfile::TempDir {
    let dir = tests::scratch();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    for v in 1..=n {
        std::fs::write(
            migrations.join(format!("{v:04}_step_{v}.sql")),
            format!("CREATE TABLE step_{v} (x integer);\nINSERT INTO step_{v} SELECT g FROM generate_series(1, 20000) g;\nSELECT pg_sleep(0.05);\n"),
        )
        .unwrap();
    }
    dir
}

#[test]
fn pg_eight_processes_start_at_once_and_each_migration_is_applied_once() {
    let Some(db) = pg_database!() else { return };
    let dir = slow_dir(6);
    let migrations = dir.path().join("migrations");
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(worker())
                .arg(&migrations)
                .args(["--postgres", &db.url])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        applied.extend(
            stdout
                .lines()
                .filter_map(|l| l.strip_prefix("applied "))
                .map(str::to_owned),
        );
    }
    applied.sort_by_key(|v| v.parse::<u64>().unwrap());
    assert_eq!(applied, ["1", "2", "3", "4", "5", "6"], "each applied exactly once");
    let mut client = db.client();
    assert_eq!(versions(&mut client), [1, 2, 3, 4, 5, 6]);
}

#[test]
fn pg_eight_processes_in_lock_table_mode_with_a_no_transaction_migration() {
    let Some(db) = pg_database!() else { return };
    let dir = slow_dir(4);
    let migrations = dir.path().join("migrations");
    // Not safe to run twice: a second run would fail on the existing index.
    std::fs::write(
        migrations.join("0005_index.sql"),
        "-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY step_1_x ON step_1 (x);\nSELECT pg_sleep(0.3);\n",
    )
    .unwrap();
    std::fs::write(
        migrations.join("0006_after.sql"),
        "CREATE TABLE after_index (x integer);\n",
    )
    .unwrap();
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(worker())
                .arg(&migrations)
                .args(["--postgres", &db.url, "--lock", "table", "--schema", "app"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        applied.extend(
            stdout
                .lines()
                .filter_map(|l| l.strip_prefix("applied "))
                .map(str::to_owned),
        );
    }
    applied.sort_by_key(|v| v.parse::<u64>().unwrap());
    assert_eq!(applied, ["1", "2", "3", "4", "5", "6"], "each applied exactly once");
    let mut client = db.client();
    assert_eq!(versions_in(&mut client, "app._migrations"), [1, 2, 3, 4, 5, 6]);
}

#[test]
fn pg_the_server_stopped_immediately_mid_migration_leaves_each_migration_all_or_nothing() {
    let Some(db) = pg_database!() else { return };
    if db.server().dir.is_none() {
        // MIGRATE_TEST_POSTGRES_URL: not a server to stop.
        return;
    }
    let server = tests::postgres::private_server().expect("a cluster of its own");
    let url = server.url_for("postgres");
    let dir = tests::scratch();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    let n = 4u64;
    for v in 1..=n {
        std::fs::write(
            migrations.join(format!("{v:04}_m{v}.sql")),
            format!("CREATE TABLE t{v} (x integer);\nINSERT INTO t{v} SELECT g FROM generate_series(1, 200000) g;\nCREATE INDEX t{v}_x ON t{v} (x);\n"),
        )
        .unwrap();
    }
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut mid_way = 0;
    for round in 0..6 {
        let mut child = Command::new(worker())
            .arg(&migrations)
            .args(["--postgres", &url, "--lock-timeout", "30"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + next(&mut seed) % 900));
        assert!(server.stop_immediately(), "round {round}: pg_ctl stop -m immediate");
        let _ = child.wait();
        assert!(
            server.start(),
            "round {round}: the server starts again (crash recovery)"
        );
        let mut client = migrate_runtime::postgres::Client::connect(&url, migrate_runtime::postgres::NoTls).unwrap();
        let recorded = versions_or_empty(&mut client);
        let expected: Vec<i64> = (1..=i64::try_from(recorded.len()).unwrap()).collect();
        assert_eq!(recorded, expected, "round {round}: applied in order without gaps");
        for v in 1..=n {
            let exists: bool = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("t{v}")])
                .unwrap()
                .get(0);
            assert_eq!(
                exists,
                recorded.contains(&i64::try_from(v).unwrap()),
                "round {round}: t{v} vs {recorded:?}"
            );
            if exists {
                let rows: i64 = client
                    .query_one(&format!("SELECT count(*) FROM t{v}"), &[])
                    .unwrap()
                    .get(0);
                assert_eq!(rows, 200_000, "round {round}: t{v} is whole");
            }
        }
        if (1..4).contains(&recorded.len()) {
            mid_way += 1;
        }
        if recorded.len() == 4 {
            client.batch_execute("DROP TABLE t1, t2, t3, t4, _migrations").unwrap();
        }
    }
    eprintln!("6 immediate stops, {mid_way} mid-way through the migrations");
    let out = Command::new(worker())
        .arg(&migrations)
        .args(["--postgres", &url, "--lock-timeout", "30"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut client = migrate_runtime::postgres::Client::connect(&url, migrate_runtime::postgres::NoTls).unwrap();
    assert_eq!(versions(&mut client), [1, 2, 3, 4]);
}

/// A small deterministic generator (no dependency): xorshift.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn pg_sigkill_of_the_migrating_client_at_random_moments_keeps_the_database_consistent() {
    let Some(db) = pg_database!() else { return };
    let rounds: u64 = std::env::var("MIGRATE_PG_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let dir = tests::scratch();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    let n = 5u64;
    for v in 1..=n {
        let body = if v == 3 {
            // A no-transaction migration among them, with one statement.
            // Safe to run again after a kill, as such a script must be.
            format!(
                "-- migrate:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS idx_{v};\nCREATE INDEX CONCURRENTLY idx_{v} ON t1 (x);\n"
            )
        } else {
            format!(
                "CREATE TABLE t{v} (x integer);\nINSERT INTO t{v} SELECT g FROM generate_series(1, 30000) g;\nCREATE INDEX t{v}_x ON t{v} (x);\n"
            )
        };
        std::fs::write(migrations.join(format!("{v:04}_m{v}.sql")), body).unwrap();
    }
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut client = db.client();
    // The kills land at random moments of a whole run: how long one takes
    // here and now (process start, connection, the five migrations and the
    // drift check's bookkeeping) sets the window, so the test does not
    // depend on the machine's speed or load.
    let started = Instant::now();
    let out = Command::new(worker())
        .arg(&migrations)
        .args(["--postgres", &db.url, "--lock-timeout", "30"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut window = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX).max(20);
    client
        .batch_execute("DROP TABLE IF EXISTS t1, t2, t4, t5, _migrations CASCADE")
        .unwrap();
    let mut partial = 0;
    // At least `rounds` kills, and until a fifth of that many landed
    // mid-way (some migrations recorded, not all): a kill that finds the
    // run finished shortens the window, one before the first migration
    // lengthens it, so a calibration made at another load does not leave
    // the kills all before or all after the migrations.
    let mut round = 0;
    while round < rounds || (partial * 5 < rounds && round < rounds * 4) {
        let mut child = Command::new(worker())
            .arg(&migrations)
            .args(["--postgres", &db.url, "--lock-timeout", "30"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(next(&mut seed) % window));
        let _ = child.kill();
        let _ = child.wait();
        // Integrity: every recorded migration's table exists, nothing
        // unrecorded left behind by a transactional migration, no lock kept
        // once the server notices the dead client.
        wait_for_other_sessions(&mut client, round);
        let recorded = versions_or_empty(&mut client);
        for v in 1..=n {
            if v == 3 {
                continue;
            }
            let exists: bool = client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("t{v}")])
                .unwrap()
                .get(0);
            assert_eq!(
                exists,
                recorded.contains(&i64::try_from(v).unwrap()),
                "round {round}: t{v} vs history {recorded:?}"
            );
            if exists {
                let rows: i64 = client
                    .query_one(&format!("SELECT count(*) FROM t{v}"), &[])
                    .unwrap()
                    .get(0);
                assert_eq!(rows, 30000, "round {round}: t{v} is whole");
            }
        }
        let expected: Vec<i64> = (1..=i64::try_from(recorded.len()).unwrap()).collect();
        assert_eq!(recorded, expected, "round {round}: applied in order without gaps");
        match recorded.len() {
            0 => window += window / 4 + 1,
            5 => {
                window = (window - window / 5).max(20);
                // Start over for the next round.
                client
                    .batch_execute("DROP TABLE IF EXISTS t1, t2, t4, t5, _migrations CASCADE")
                    .unwrap();
            }
            _ => partial += 1,
        }
        round += 1;
    }
    assert!(
        partial * 5 >= rounds,
        "only {partial} of {round} kills landed mid-way (window {window} ms at the end)"
    );
    eprintln!("{round} kills, {partial} mid-way through the migrations (window {window} ms at the end)");
    // A run that completes after all that.
    let out = Command::new(worker())
        .arg(&migrations)
        .args(["--postgres", &db.url, "--lock-timeout", "30"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(versions(&mut client), [1, 2, 3, 4, 5]);
    let valid: i64 = client
        .query_one("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = 'idx_3' AND i.indisvalid", &[])
        .unwrap()
        .get(0);
    assert_eq!(valid, 1);
}

fn versions_or_empty(client: &mut Client) -> Vec<i64> {
    match client.query("SELECT version FROM _migrations ORDER BY version", &[]) {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(_) => Vec::new(),
    }
}

/// Waits until the server has ended the killed client's session (at once
/// when it was idle, at the end of its statement when busy): its
/// transaction is then rolled back and its locks are released.
fn wait_for_other_sessions(client: &mut Client, round: u64) {
    let start = Instant::now();
    loop {
        let others: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0);
        if others == 0 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "round {round}: the killed client's session did not end"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn pg_notices_of_a_migration_reach_the_events_and_the_cli() {
    use std::sync::Mutex;
    let Some(db) = pg_database!() else { return };
    let mut config: migrate_runtime::postgres::Config = db.url.parse().unwrap();
    let mut client = migrate_runtime::forward_notices(&mut config)
        .connect(migrate_runtime::postgres::NoTls)
        .unwrap();
    let ms = [
        up(
            1,
            "backfill",
            "DROP TABLE IF EXISTS nothing_here;\nDO $$ BEGIN RAISE NOTICE 'backfilled % rows', 3 USING HINT = 'none left'; END $$;\n",
        ),
        no_tx(up(
            2,
            "index",
            "DO $$ BEGIN RAISE WARNING 'slow on big tables'; END $$;\n",
        )),
        up(
            3,
            "fails",
            "DO $$ BEGIN RAISE NOTICE 'about to fail'; END $$;\nSELECT nope;\n",
        ),
    ];
    // (version, severity, message, hint) of each notice.
    type Seen = Vec<(u64, String, String, Option<String>)>;
    let seen: Mutex<Seen> = Mutex::new(Vec::new());
    let result = Migrator::new(&ms)
        .on_event(|e| {
            if let migrate_runtime::Event::Notice { migration, notice, .. } = e {
                seen.lock().unwrap().push((
                    migration.version(),
                    notice.severity.clone(),
                    notice.message.clone(),
                    notice.hint.clone(),
                ));
            }
        })
        .apply_postgres(&mut client);
    assert!(result.is_err(), "migration 3 fails");
    let seen = seen.into_inner().unwrap();
    assert_eq!(
        seen,
        [
            (
                1,
                "NOTICE".to_owned(),
                "table \"nothing_here\" does not exist, skipping".to_owned(),
                None
            ),
            (
                1,
                "NOTICE".to_owned(),
                "backfilled 3 rows".to_owned(),
                Some("none left".to_owned())
            ),
            (2, "WARNING".to_owned(), "slow on big tables".to_owned(), None),
            (3, "NOTICE".to_owned(), "about to fail".to_owned(), None),
        ]
    );
    // Outside a migration, nothing is collected (and nothing breaks).
    client
        .batch_execute("DO $$ BEGIN RAISE NOTICE 'app query'; END $$")
        .unwrap();

    // The CLI shows them between its progress lines.
    let pkg = tests::Package::new();
    pkg.write(
        "migrations/0001_backfill.sql",
        "DO $$ BEGIN RAISE NOTICE 'backfilled % rows', 3; END $$;\n",
    );
    let other = db.server().url_for(&format!("{}_cli", db.name));
    let mut admin =
        migrate_runtime::postgres::Client::connect(&db.server().url_for("postgres"), migrate_runtime::postgres::NoTls)
            .unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE \"{}_cli\"", db.name))
        .unwrap();
    let (code, _, err) = cli(&pkg, &other, &["up"]);
    admin
        .batch_execute(&format!("DROP DATABASE \"{}_cli\" WITH (FORCE)", db.name))
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: the server said: NOTICE: backfilled 3 rows\napplying 0001 backfill … done in"),
        "{err}"
    );
}

#[test]
fn pg_a_waiting_migrator_does_not_deadlock_a_create_index_concurrently_of_the_lock_holder() {
    // The waiter used to block in pg_advisory_xact_lock inside a
    // transaction, holding a snapshot that the holder's CREATE INDEX
    // CONCURRENTLY waits for: the server broke the deadlock by failing one.
    let Some(db) = pg_database!() else { return };
    let ms = vec![
        up(1, "slow", "SELECT pg_sleep(0.3);\nCREATE TABLE t (x integer);"),
        no_tx(up(2, "concurrently", "CREATE INDEX CONCURRENTLY t_x ON t (x);")),
        up(3, "after", "CREATE TABLE t3 (x integer);"),
    ];
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let (url, ms) = (db.url.clone(), ms.clone());
            std::thread::spawn(move || {
                let mut client = Client::connect(&url, migrate_runtime::postgres::NoTls).unwrap();
                Migrator::new(&ms)
                    .apply_postgres(&mut client)
                    .map(|r| r.applied().count())
            })
        })
        .collect();
    let applied: Vec<usize> = runs
        .into_iter()
        .map(|t| t.join().unwrap().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert_eq!(applied.iter().sum::<usize>(), 3, "each migration once: {applied:?}");
    let mut client = db.client();
    assert_eq!(versions(&mut client), [1, 2, 3]);
    let valid: bool = client
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(valid);
}
