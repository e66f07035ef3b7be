//! [`Migrator::validate`]: replay every migration into an in-memory
//! database and check that each down script undoes its up.
//!
//! The replay applies each up once to the full database, through the real
//! runner's step ([`Migrator::step`]). The up → down → up round trip of a
//! migration runs in a scratch database holding only the tables that
//! migration's scripts name (with their rows, indexes and triggers): SQLite
//! reloads the whole schema on many `ALTER TABLE`s, so round trips on the
//! full database would cost several times the replay itself. When anything
//! goes wrong in the scratch database, or the scripts need more of the
//! database than they name, the round trip is done again on the full
//! database, which decides. There, down → up runs in a transaction that is
//! rolled back, so the replay goes on from the plain up's state whatever
//! the down did (for `-- migrate:no-transaction` scripts, which cannot be
//! rolled back, the state is rebuilt by replaying the ups again).

use std::fmt;

use rusqlite::Connection;

use crate::backend::Backend;
use crate::plan::Planned;
use crate::schema::Schema;
use crate::scratch::{copy_tables, tables_named};
use crate::session::{Session, Sqlite, replay_connection};
use crate::{Error, Migration, Migrator, Result};

/// What [`Migrator::check`] found in migrations that replay cleanly: the
/// schema after the last one, and what deserves a look without failing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validated {
    /// The schema after the last migration.
    pub schema: Schema,
    /// Things accepted with a warning, in migration order.
    pub warnings: Vec<Warning>,
    /// The [fingerprint](crate::model::fingerprint) of the schema right
    /// after each migration, oldest first: what the generated code records
    /// for the start-up drift check.
    pub fingerprints: Vec<(u64, String)>,
}

/// Something the replay accepted but that deserves a look, such as a down
/// script that gives back a table with its columns in another order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// The migration's version.
    pub version: u64,
    /// The migration's name.
    pub name: String,
    /// The file it is about.
    pub file: String,
    /// The 1-based line it is about (1 when it is about the whole file).
    pub line: usize,
    /// What was found.
    pub message: String,
    /// What to do about it, if anything.
    pub hint: String,
}

impl fmt::Display for Warning {
    /// `file:line: message; hint`, on one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}; {}", self.file, self.line, self.message, self.hint)
    }
}

/// What a down that only changes the column order is told.
const REORDERED_HINT: &str = "a down that re-adds a dropped column with ALTER TABLE … ADD COLUMN puts it last; \
     only SELECT * and INSERT without a column list see the order, rebuild the table in the down if that matters";

/// Problems and warnings found so far.
#[derive(Default)]
struct Findings {
    problems: Vec<Error>,
    warnings: Vec<Warning>,
    /// The schema fingerprint after each migration's plain up, by version.
    fingerprints: std::collections::BTreeMap<u64, String>,
}

/// How the replay goes on after a migration.
enum Next {
    /// With the next migration.
    Go,
    /// Not at all: the database is not in a state later migrations expect.
    Stop,
    /// From a database rebuilt with the plain ups up to the migration at
    /// this index: a round trip outside a transaction left it changed.
    Rebuild(usize),
}

impl<'m> Migrator<'m> {
    /// Replays every migration into a new in-memory database through this
    /// runner, and for each one with a down script checks that up → down gives
    /// back exactly the schema before it and that up runs again after down.
    /// Returns the schema after the last migration; [`check`](Self::check)
    /// returns the warnings as well.
    ///
    /// The replay never touches the file system: databases that migrations
    /// attach (`ATTACH 'side.db'`, `VACUUM INTO 'backup.db'`) are attached
    /// in memory, and an `ATTACH` by a URI is refused as not checkable.
    ///
    /// Use it in a test of your own:
    ///
    /// ```
    /// # use migrate_runtime::{Migration, Migrator, Script};
    /// let migrations = [Migration::new(1, "t", Script::new("CREATE TABLE t (x);", "0001_t.up.sql"))
    ///     .with_down(Script::new("DROP TABLE t;", "0001_t.down.sql"))];
    /// Migrator::new(&migrations).validate()?;
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] with every problem found: a failing up
    /// stops the replay; a down that does not undo its up does not, and the
    /// migrations after it are checked from the state the plain up left.
    pub fn validate(&self) -> Result<Schema> {
        self.check().map(|v| v.schema)
    }

    /// [`validate`](Self::validate), returning the warnings as well: a
    /// down script that gives back a table whose columns are the same but
    /// in another order is accepted with a warning that names the table.
    ///
    /// # Examples
    ///
    /// ```
    /// # use migrate_runtime::{Migration, Migrator, Script};
    /// let migrations = [
    ///     Migration::new(1, "t", Script::new("CREATE TABLE t (a, b, c);", "0001_t.sql")),
    ///     Migration::new(2, "drop_b", Script::new("ALTER TABLE t DROP COLUMN b;", "0002_drop_b.up.sql"))
    ///         .with_down(Script::new("ALTER TABLE t ADD COLUMN b;", "0002_drop_b.down.sql")),
    /// ];
    /// let checked = Migrator::new(&migrations).check()?;
    /// assert_eq!(checked.warnings.len(), 1);
    /// eprintln!("warning: {}", checked.warnings[0]);
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`validate`](Self::validate).
    pub fn check(&self) -> Result<Validated> {
        self.check_with(|_, _| Ok(())).map(|(v, ())| v)
    }

    /// [`validate`](Self::validate), calling `inspect` with the in-memory
    /// database and its schema at the end (code generation reads the
    /// columns of the final schema there).
    #[doc(hidden)]
    pub fn validate_with<T>(&self, inspect: impl FnOnce(&Connection, &Schema) -> Result<T>) -> Result<(Schema, T)> {
        self.check_with(inspect).map(|(v, extra)| (v.schema, extra))
    }

    /// [`check`](Self::check), calling `inspect` with the in-memory database
    /// and its schema at the end, as [`validate_with`](Self::validate_with).
    #[doc(hidden)]
    pub fn check_with<T>(&self, inspect: impl FnOnce(&Connection, &Schema) -> Result<T>) -> Result<(Validated, T)> {
        self.check_set()?;
        let mut found = Findings::default();
        let mut conn = self.fresh_replay()?;
        let mut from = 0;
        loop {
            match self.replay(&conn, from, &mut found)? {
                Next::Go | Next::Stop => break,
                Next::Rebuild(at) => {
                    conn = self.fresh_replay()?;
                    if !self.replay_ups(&conn, &self.migrations[..=at], &mut found)? {
                        break;
                    }
                    from = at + 1;
                }
            }
        }
        if !found.problems.is_empty() {
            return Err(Error::Validation {
                problems: found.problems,
            });
        }
        let schema = Schema::read(&conn, &self.table.name)?;
        let extra = inspect(&conn, &schema)?;
        let validated = Validated {
            schema,
            warnings: found.warnings,
            fingerprints: found.fingerprints.into_iter().collect(),
        };
        Ok((validated, extra))
    }

    /// Replays the migrations from index `from` on, each up once and each
    /// round trip, into `conn`.
    fn replay(&self, conn: &Connection, from: usize, found: &mut Findings) -> Result<Next> {
        let session = Session::start_replay(conn, self.lock_timeout)?;
        self.table.create(conn)?;
        let filter = self.filter()?;
        // The fingerprints read again only the rows of `sqlite_schema`
        // that the statements run since the last one may have changed.
        let mut fingerprints = crate::model::FingerprintCache::default();
        let mut fingerprint = |previous: Option<&Migration>| {
            let touched = session.take_schema_touched();
            let all = touched.all || previous.is_none_or(touches_all);
            fingerprints.fingerprint(conn, &filter, (!all).then_some(&touched.tables))
        };
        let mut next = Next::Go;
        for (i, m) in self.migrations.iter().enumerate().skip(from) {
            // Here the database holds the plain ups of every migration
            // before this one: the schema right after the previous.
            if let Some(previous) = i.checked_sub(1).map(|p| &self.migrations[p]) {
                let hex = fingerprint(i.checked_sub(from + 1).map(|_| previous))?;
                found.fingerprints.insert(previous.version(), hex);
            }
            if m.down().is_some() {
                let passed = matches!(self.round_trip_in_scratch(conn, m), Ok(true));
                // Finding the tables it names used an authorizer of its own.
                session.watch_writes();
                if !passed {
                    // The full database decides.
                    match self.round_trip_in_place(&session, m, found)? {
                        Next::Go => continue,
                        Next::Stop => next = Next::Stop,
                        Next::Rebuild(_) => next = Next::Rebuild(i),
                    }
                    break;
                }
            }
            if let Err(e) = self.step_committed(&session, Planned::up(m)) {
                found.problems.push(e);
                next = Next::Stop;
                break;
            }
        }
        if let (Next::Go, Some(last)) = (&next, self.migrations.last()) {
            let previous = (self.migrations.len() > from + 1).then_some(last);
            found.fingerprints.insert(last.version(), fingerprint(previous)?);
        }
        session.end()?;
        Ok(next)
    }

    /// Applies the ups of `migrations` to `conn`, as they were applied
    /// before; `false` (with the problem recorded) when one fails now.
    fn replay_ups(&self, conn: &Connection, migrations: &'m [Migration], found: &mut Findings) -> Result<bool> {
        let session = Session::start_replay(conn, self.lock_timeout)?;
        self.table.create(conn)?;
        let mut ok = true;
        for m in migrations {
            if let Err(e) = self.step_committed(&session, Planned::up(m)) {
                found.problems.push(e);
                ok = false;
                break;
            }
        }
        session.end()?;
        Ok(ok)
    }

    /// Up, then down, compare, up again, on the full database. Records
    /// problems and warnings, and leaves the database as the plain up left
    /// it: down → up runs in a transaction that is rolled back. Scripts
    /// that run outside a transaction are committed instead, and the
    /// database is rebuilt when their round trip found a problem.
    fn round_trip_in_place(&self, session: &Session<'_>, m: &'m Migration, found: &mut Findings) -> Result<Next> {
        let conn = session.conn;
        let before = Schema::read(conn, &self.table.name)?;
        if let Err(e) = self.step_committed(session, Planned::up(m)) {
            found.problems.push(e);
            return Ok(Next::Stop);
        }
        let Some(down) = m.down() else {
            return Ok(Next::Go);
        };
        let problems_before = found.problems.len();
        let in_transaction = !m.up().no_transaction() && !down.no_transaction();
        let mut waited = None;
        let mut tx = Sqlite::new(session);
        if in_transaction {
            tx.begin(self, &mut waited)?;
        }
        let mut run = |step: Planned<'m>| {
            if in_transaction {
                self.step(&mut tx, step, &mut waited)
            } else {
                self.step_committed(session, step)
            }
        };
        match run(Planned::down(m)) {
            Err(e) => found.problems.push(e),
            Ok(_) => {
                let now = Schema::read(conn, &self.table.name)?;
                let comparison = before.compare(&now);
                if !comparison.differences.is_empty() {
                    found.problems.push(Error::NotReversible {
                        version: m.version(),
                        name: m.name().to_owned(),
                        file: down.file().to_owned(),
                        difference: comparison.differences.join("; "),
                    });
                }
                for reordered in comparison.reordered {
                    found.warnings.push(Warning {
                        version: m.version(),
                        name: m.name().to_owned(),
                        file: down.file().to_owned(),
                        line: 1,
                        message: format!("down migration {} `{}` gives back {reordered}", m.version(), m.name()),
                        hint: REORDERED_HINT.to_owned(),
                    });
                }
                if let Err(mut e) = run(Planned::up(m)) {
                    if let Error::Sql { message, .. } = &mut e {
                        message.insert_str(0, "after its down script ran: ");
                    }
                    found.problems.push(e);
                }
            }
        }
        if in_transaction {
            // Back to the state after the plain up, whatever the down did.
            tx.rollback().map(|()| Next::Go)
        } else if found.problems.len() > problems_before {
            Ok(Next::Rebuild(0))
        } else {
            Ok(Next::Go)
        }
    }

    /// The round trip in a scratch database with just the tables the
    /// migration names. `Ok(true)` when it passed cleanly.
    fn round_trip_in_scratch(&self, main: &Connection, m: &'m Migration) -> Result<bool> {
        let Some(down) = m.down() else {
            return Ok(true);
        };
        let named = tables_named(main, &[m.up(), down]);
        let scratch = replay_connection()?;
        self.set_up_replay(&scratch)?;
        scratch
            .execute_batch("PRAGMA foreign_keys = OFF")
            .map_err(Error::db("setting up a scratch database"))?;
        if copy_tables(main, &scratch, &named, &self.table.name).is_err() {
            return Ok(false);
        }
        let session = Session::start_replay(&scratch, self.lock_timeout)?;
        self.table.create(&scratch)?;
        let before = Schema::read(&scratch, &self.table.name)?;
        // The same step as everywhere else, in the scratch database.
        let passed = self.step_committed(&session, Planned::up(m)).is_ok()
            && self.step_committed(&session, Planned::down(m)).is_ok()
            && Schema::read(&scratch, &self.table.name)?.difference(&before).is_none()
            && self.step_committed(&session, Planned::up(m)).is_ok();
        session.end()?;
        Ok(passed)
    }
}

/// Whether a migration's scripts may change rows of `sqlite_schema`
/// other than those of the tables they name: `ALTER TABLE … RENAME`
/// rewrites the statements of every object that names the table or column,
/// `PRAGMA writable_schema` lets a script write the rows directly, and
/// `VACUUM` may renumber them. A
/// plain search of the text (in comments and strings too): when in doubt,
/// the whole schema is read again.
fn touches_all(m: &Migration) -> bool {
    let says = |sql: &str, word: &[u8]| sql.as_bytes().windows(word.len()).any(|w| w.eq_ignore_ascii_case(word));
    std::iter::once(m.up())
        .chain(m.down())
        .any(|s| says(s.sql(), b"rename") || says(s.sql(), b"writable_schema") || says(s.sql(), b"vacuum"))
}

impl Migrator<'_> {
    /// A new replay database with foreign keys on, as an app's would be,
    /// and the [`replay_setup`](Self::replay_setup) run on it.
    fn fresh_replay(&self) -> Result<Connection> {
        let conn = replay_connection()?;
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .map_err(Error::db("enabling foreign keys"))?;
        self.set_up_replay(&conn)?;
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Script;

    fn no_tx(version: u64, name: &str, sql: String) -> Migration {
        Migration::new(
            version,
            name.to_owned(),
            Script::new(sql, format!("migrations/{version:04}_{name}.sql")).with_no_transaction(true),
        )
    }

    fn sql_error(e: Error) -> (String, usize, String, &'static str) {
        let Error::Validation { mut problems } = e else {
            panic!("{e}")
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        let e = problems.remove(0);
        let advice = e.advice().unwrap_or_default();
        match e {
            Error::Sql {
                file, line, message, ..
            } => (file, line, message, advice),
            other => panic!("{other}"),
        }
    }

    /// The replay's fingerprints read again only the rows of the tables a
    /// migration touched; debug builds check each against reading the
    /// whole schema, so this replay fails if a change is missed: renames
    /// that rewrite other objects, views, triggers, dropped columns and
    /// tables, virtual tables.
    #[test]
    fn incremental_fingerprints_equal_full_reads() {
        let up =
            |v: u64, sql: &str| Migration::new(v, format!("m{v}"), Script::new(sql.to_owned(), format!("{v}.sql")));
        let migrations = [
            up(1, "CREATE TABLE a (id INTEGER PRIMARY KEY, x);"),
            up(2, "CREATE TABLE b (id INTEGER PRIMARY KEY, a_id REFERENCES a (id));"),
            up(
                3,
                "CREATE VIEW v AS SELECT x FROM a; CREATE TRIGGER t AFTER INSERT ON b BEGIN UPDATE a SET x = 1; END;",
            ),
            up(4, "ALTER TABLE a RENAME TO a2;"),
            up(5, "ALTER TABLE a2 RENAME COLUMN x TO y;"),
            up(6, "CREATE INDEX b_a ON b (a_id); ALTER TABLE b ADD COLUMN z;"),
            up(7, "ALTER TABLE b DROP COLUMN z;"),
            up(8, "DROP VIEW v; DROP TRIGGER t;"),
            up(9, "CREATE VIRTUAL TABLE f USING fts5(body);"),
            up(10, "DROP TABLE f; DROP INDEX b_a;"),
            up(11, "CREATE TABLE c (id INTEGER PRIMARY KEY AUTOINCREMENT);"),
        ];
        let checked = Migrator::new(&migrations).check().unwrap();
        assert_eq!(checked.fingerprints.len(), migrations.len());
    }

    /// Absolute names in a temporary directory, and relative names, which
    /// would land in the current directory (the package's, under cargo test).
    #[test]
    fn attach_and_vacuum_into_never_touch_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let side = dir.path().join("side.db");
        let backup = dir.path().join("backup.db");
        let relative = ["replay_side_test.db", "replay_backup_test.db"];
        let migrations = [
            no_tx(
                1,
                "archive",
                format!(
                    "ATTACH DATABASE '{}' AS side;\nCREATE TABLE side.archive (x);\nINSERT INTO side.archive VALUES (1);\nDETACH DATABASE side;\n",
                    side.display()
                ),
            ),
            no_tx(
                2,
                "relative",
                format!(
                    "ATTACH '{}' AS rel;\nCREATE TABLE rel.t (x);\nDETACH rel;\n",
                    relative[0]
                ),
            ),
            no_tx(3, "backup", format!("VACUUM INTO '{}';\n", backup.display())),
            no_tx(4, "backup_here", format!("VACUUM INTO '{}';\n", relative[1])),
        ];
        // Twice: a file left by the first would fail the second
        // ("output file already exists").
        for _ in 0..2 {
            Migrator::new(&migrations).validate().unwrap();
        }
        assert!(!side.exists() && !backup.exists());
        assert_eq!(dir.path().read_dir().unwrap().count(), 0);
        for name in relative {
            assert!(!std::path::Path::new(name).exists(), "{name} was written");
        }
    }

    #[test]
    fn statements_on_an_attached_database_are_still_checked() {
        let migrations = [no_tx(
            1,
            "archive",
            "ATTACH 'side.db' AS side;\nCREATE TABLE side.archive (x);\nINSERT INTO side.archive (y) VALUES (1);\n"
                .to_owned(),
        )];
        let (file, line, message, _) = sql_error(Migrator::new(&migrations).validate().unwrap_err());
        assert_eq!((file.as_str(), line), ("migrations/0001_archive.sql", 3));
        assert!(message.contains("no column named y"), "{message}");
        assert!(!std::path::Path::new("side.db").exists());
    }

    #[test]
    fn a_uri_attach_is_refused_with_file_line_and_hint() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("side.db");
        for sql in [
            format!("SELECT 1;\nATTACH 'file:{}?mode=rwc' AS side;\n", target.display()),
            format!(
                "SELECT 1;\nATTACH 'file:' || '{}?mode=rwc' AS side;\n",
                target.display()
            ),
            format!("SELECT 1;\nVACUUM INTO 'file:{}?mode=rwc';\n", target.display()),
        ] {
            let migrations = [no_tx(1, "side", sql.clone())];
            let (file, line, message, advice) = sql_error(Migrator::new(&migrations).validate().unwrap_err());
            assert_eq!((file.as_str(), line), ("migrations/0001_side.sql", 2), "{sql}");
            assert!(message.contains("cannot check this one"), "{message}");
            assert!(advice.contains("plain file name"), "{advice}");
            assert!(!target.exists(), "{sql}");
        }
    }

    fn file(version: u64, name: &str, kind: &str, sql: &str) -> Script {
        Script::new(sql.to_owned(), format!("migrations/{version:04}_{name}{kind}.sql"))
    }

    fn up_only(version: u64, name: &str, sql: &str) -> Migration {
        Migration::new(version, name.to_owned(), file(version, name, "", sql))
    }

    fn updown(version: u64, name: &str, up: &str, down: &str) -> Migration {
        Migration::new(version, name.to_owned(), file(version, name, ".up", up))
            .with_down(file(version, name, ".down", down))
    }

    fn problems(result: Result<Validated>) -> Vec<String> {
        match result {
            Err(Error::Validation { problems }) => problems.iter().map(ToString::to_string).collect(),
            other => panic!("{other:?}"),
        }
    }

    /// Issue 8, defect 2: the down of 0002 does not undo its up; 0003 is
    /// right for the state after the plain up of 0002 and must pass.
    #[test]
    fn a_rejected_down_does_not_poison_the_migrations_after_it() {
        for no_transaction in [false, true] {
            let mut b = updown(2, "b", "DROP TABLE t;", "ALTER TABLE tmp RENAME TO t;");
            if no_transaction {
                let down = b.down().unwrap().clone().with_no_transaction(true);
                b = b.with_down(down);
            }
            let migrations = [
                up_only(1, "a", "CREATE TABLE t (x); CREATE TABLE tmp (x);"),
                b,
                up_only(3, "c", "ALTER TABLE tmp RENAME TO t;"),
                up_only(4, "d", "INSERT INTO t VALUES (1);"),
            ];
            let found = problems(Migrator::new(&migrations).check());
            assert_eq!(found.len(), 1, "{found:#?}");
            assert!(
                found[0].starts_with("migrations/0002_b.down.sql:1: down migration 2 `b` does not undo its up"),
                "{found:#?}"
            );
        }
    }

    #[test]
    fn a_failing_down_or_second_up_does_not_poison_either() {
        let migrations = [
            up_only(1, "a", "CREATE TABLE t (x);"),
            // The down fails half way: its first statement must not stay.
            updown(2, "b", "CREATE TABLE u (x);", "DROP TABLE t; DROP TABLE nope;"),
            // Up cannot run again after down: u is left behind.
            updown(3, "c", "CREATE TABLE v (x); CREATE TABLE u2 (x);", "DROP TABLE v;"),
            up_only(
                4,
                "d",
                "INSERT INTO t VALUES (1); INSERT INTO u VALUES (1); INSERT INTO v VALUES (1);",
            ),
        ];
        let found = problems(Migrator::new(&migrations).check());
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[0].contains("0002_b.down.sql") && found[0].contains("no such table: nope"),
            "{found:#?}"
        );
        assert!(
            found[1].contains("0003_c.down.sql") && found[1].contains("table `u2` was left behind"),
            "{found:#?}"
        );
        assert!(
            found[2].contains("0003_c.up.sql") && found[2].contains("after its down script ran"),
            "{found:#?}"
        );
    }

    /// Issue 8: a down that re-adds a dropped column gives it back last.
    #[test]
    fn column_order_alone_is_a_warning_that_names_the_table() {
        let migrations = [
            up_only(
                1,
                "users",
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT);",
            ),
            updown(
                2,
                "drop_email",
                "ALTER TABLE users DROP COLUMN email;",
                "ALTER TABLE users ADD COLUMN email TEXT;",
            ),
            up_only(3, "more", "INSERT INTO users (id, name) VALUES (1, 'x');"),
        ];
        let checked = Migrator::new(&migrations).check().unwrap();
        assert_eq!(checked.warnings.len(), 1);
        let w = checked.warnings[0].to_string();
        assert!(
            w.starts_with(
                "migrations/0002_drop_email.down.sql:1: down migration 2 `drop_email` gives back table `users` \
                 with its columns in another order: (id, email, name) before, (id, name, email) after; a down that re-adds"
            ),
            "{w}"
        );
        // validate() accepts it too, and the final schema is the plain up's.
        let schema = Migrator::new(&migrations).validate().unwrap();
        let sql = schema.objects()[0].sql.as_deref().unwrap_or_default();
        assert!(!sql.contains("email"), "{sql}");
    }

    #[test]
    fn a_real_column_difference_is_told_column_by_column() {
        let migrations = [
            up_only(
                1,
                "users",
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, x BLOB);",
            ),
            updown(
                2,
                "drop_email",
                "ALTER TABLE users DROP COLUMN email;",
                "ALTER TABLE users ADD COLUMN email INTEGER; ALTER TABLE users DROP COLUMN x;",
            ),
        ];
        let found = problems(Migrator::new(&migrations).check());
        assert_eq!(
            found,
            [
                "migrations/0002_drop_email.down.sql:1: down migration 2 `drop_email` does not undo its up: \
              column users.email: TEXT → INTEGER; column users.x missing; make the down script restore exactly the schema before the up"
            ]
        );
    }
}
