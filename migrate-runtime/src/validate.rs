//! [`Migrator::validate`]: replay every migration into an in-memory
//! database and check that each down script undoes its up.
//!
//! The replay applies each up once to the full database, through the real
//! runner. The up → down → up round trip of a migration runs in a scratch
//! database holding only the tables that migration's scripts name (with
//! their rows, indexes and triggers): SQLite reloads the whole schema on
//! many `ALTER TABLE`s, so round trips on the full database would cost
//! several times the replay itself. When anything goes wrong in the scratch
//! database, or the scripts need more of the database than they name, the
//! round trip is done again on the full database, which decides.

use std::collections::BTreeSet;

use rusqlite::Connection;
use rusqlite::hooks::AuthAction;
use rusqlite::types::Value;

use crate::plan::Planned;
use crate::schema::Schema;
use crate::session::{Session, replay_connection};
use crate::sql::statements;
use crate::{Direction, Error, Migration, Migrator, Result, Script};

impl<'m> Migrator<'m> {
    /// Replays every migration into a new in-memory database through this
    /// runner, and for each one with a down script checks that up → down gives
    /// back exactly the schema before it and that up runs again after down.
    /// Returns the schema after the last migration.
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
    /// [`Error::Validation`] with every problem found: a failing statement
    /// stops the replay; a down that does not undo its up does not.
    pub fn validate(&self) -> Result<Schema> {
        self.validate_with(|_, _| Ok(())).map(|(schema, ())| schema)
    }

    /// [`validate`](Self::validate), calling `inspect` with the in-memory
    /// database and its schema at the end (code generation reads the
    /// columns of the final schema there).
    #[doc(hidden)]
    pub fn validate_with<T>(&self, inspect: impl FnOnce(&Connection, &Schema) -> Result<T>) -> Result<(Schema, T)> {
        self.check_set()?;
        let conn = replay_connection()?;
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .map_err(Error::db("enabling foreign keys"))?;
        let session = Session::start_replay(&conn, self.lock_timeout)?;
        self.table.create(&conn)?;
        let mut problems = Vec::new();
        for m in self.migrations {
            if m.down().is_some() {
                let passed = matches!(self.round_trip_in_scratch(&conn, m), Ok(true));
                // Finding the tables it names used an authorizer of its own.
                session.watch_writes();
                if !passed {
                    // The full database decides.
                    if !self.round_trip_in_place(&session, m, &mut problems)? {
                        break;
                    }
                    continue;
                }
            }
            if let Err(e) = self.step_committed(&session, Planned::up(m)) {
                problems.push(e);
                break;
            }
        }
        session.end()?;
        if !problems.is_empty() {
            return Err(Error::Validation { problems });
        }
        let schema = Schema::read(&conn, &self.table.name)?;
        let extra = inspect(&conn, &schema)?;
        Ok((schema, extra))
    }

    /// Up, down, compare, up again, on the full database. Records problems;
    /// returns whether the replay can go on.
    fn round_trip_in_place(&self, session: &Session<'_>, m: &'m Migration, problems: &mut Vec<Error>) -> Result<bool> {
        let conn = session.conn;
        let before = Schema::read(conn, &self.table.name)?;
        if let Err(e) = self.step_committed(session, Planned::up(m)) {
            problems.push(e);
            return Ok(false);
        }
        let Some(down) = m.down() else {
            return Ok(true);
        };
        if let Err(e) = self.step_committed(session, Planned::down(m)) {
            // The down was rolled back: the database is as after the up.
            problems.push(e);
            return Ok(true);
        }
        let now = Schema::read(conn, &self.table.name)?;
        if let Some(difference) = before.difference(&now) {
            problems.push(Error::NotReversible {
                version: m.version(),
                name: m.name().to_owned(),
                file: down.file().to_owned(),
                difference,
            });
        }
        if let Err(mut e) = self.step_committed(session, Planned::up(m)) {
            if let Error::Sql { message, .. } = &mut e {
                message.insert_str(0, "after its down script ran: ");
            }
            problems.push(e);
            return Ok(false);
        }
        Ok(true)
    }

    /// The round trip in a scratch database with just the tables the
    /// migration names. `Ok(true)` when it passed cleanly.
    fn round_trip_in_scratch(&self, main: &Connection, m: &'m Migration) -> Result<bool> {
        let Some(down) = m.down() else {
            return Ok(true);
        };
        let named = tables_named(main, &[m.up(), down]);
        let scratch = replay_connection()?;
        scratch
            .execute_batch("PRAGMA foreign_keys = OFF")
            .map_err(Error::db("setting up a scratch database"))?;
        if copy_tables(main, &scratch, &named, &self.table.name).is_err() {
            return Ok(false);
        }
        let session = Session::start_replay(&scratch, self.lock_timeout)?;
        let before = Schema::read(&scratch, &self.table.name)?;
        let a = session.run_script(m, Direction::Up, m.up(), true);
        let b = session.run_script(m, Direction::Down, down, true);
        let c = Schema::read(&scratch, &self.table.name)?.difference(&before);
        let d = session.run_script(m, Direction::Up, m.up(), true);
        let passed = a.is_ok() && b.is_ok() && c.is_none() && d.is_ok();
        session.end()?;
        Ok(passed)
    }
}

/// The tables (and views) that `scripts` name, found by preparing each
/// statement against `conn` without running it. Statements that cannot be
/// prepared yet (they name a table an earlier statement creates) are skipped:
/// what they name does not exist before the migration.
fn tables_named(conn: &Connection, scripts: &[&Script]) -> BTreeSet<String> {
    let prepare_all = || {
        for script in scripts {
            for stmt in statements(script.sql()) {
                let _ = conn.prepare(stmt.text);
            }
        }
    };
    crate::foreign_keys::tables_seen(conn, table_of, prepare_all).1
}

fn table_of<'a>(action: &AuthAction<'a>) -> Option<&'a str> {
    match *action {
        AuthAction::Read { table_name, .. }
        | AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::AlterTable { table_name, .. }
        | AuthAction::DropTable { table_name }
        | AuthAction::CreateIndex { table_name, .. }
        | AuthAction::DropIndex { table_name, .. }
        | AuthAction::CreateTrigger { table_name, .. }
        | AuthAction::DropTrigger { table_name, .. }
        | AuthAction::Analyze { table_name } => Some(table_name),
        AuthAction::DropView { view_name } => Some(view_name),
        _ => None,
    }
}

/// Copies `names` (tables with their rows, indexes and triggers; views)
/// from `main` into `scratch`.
fn copy_tables(
    main: &Connection,
    scratch: &Connection,
    names: &BTreeSet<String>,
    tracking: &str,
) -> rusqlite::Result<()> {
    let mut objects: Vec<(String, String, String)> = Vec::new();
    let mut stmt =
        main.prepare_cached("SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = ?1 COLLATE NOCASE")?;
    let internal = |n: &str| n.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"));
    for name in names
        .iter()
        .filter(|n| !n.eq_ignore_ascii_case(tracking) && !internal(n))
    {
        let rows = stmt.query_map([name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?;
        for row in rows {
            let (kind, object, sql) = row?;
            if let Some(sql) = sql.filter(|_| !internal(&object)) {
                objects.push((kind, object, sql));
            }
        }
    }
    let rank = |kind: &str| match kind {
        "table" => 0,
        "view" => 1,
        _ => 2,
    };
    objects.sort_by_key(|(kind, ..)| rank(kind));
    scratch.execute_batch("BEGIN")?;
    for (kind, name, sql) in &objects {
        scratch.execute_batch(sql)?;
        if kind == "table" {
            copy_rows(main, scratch, name)?;
        }
    }
    scratch.execute_batch("COMMIT")
}

fn copy_rows(main: &Connection, scratch: &Connection, table: &str) -> rusqlite::Result<()> {
    let quoted = crate::history::quote(table);
    let mut select = main.prepare(&format!("SELECT * FROM {quoted}"))?;
    let n = select.column_count();
    if n == 0 {
        return Ok(());
    }
    let placeholders = vec!["?"; n].join(", ");
    let mut insert = scratch.prepare(&format!("INSERT INTO {quoted} VALUES ({placeholders})"))?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let values = (0..n)
            .map(|i| row.get::<_, Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        insert.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
