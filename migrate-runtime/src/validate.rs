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
use crate::replay_cache::{NoCache, ReplayCache, Verified};
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
        self.check_cached(&mut NoCache, inspect)
    }

    /// [`check_with`](Self::check_with), starting from the longest
    /// verified prefix `cache` holds and saving the prefixes it wants: the
    /// incremental check of `cargo build`.
    #[doc(hidden)]
    pub fn check_cached<T>(
        &self,
        cache: &mut dyn ReplayCache,
        inspect: impl FnOnce(&Connection, &Schema) -> Result<T>,
    ) -> Result<(Validated, T)> {
        self.check_set()?;
        let mut found = Findings::default();
        let mut conn = self.fresh_replay()?;
        let mut from = 0;
        let resumable = crate::replay_cache::resumable(self.migrations);
        match cache.resume(&mut conn, resumable) {
            Some(verified) if verified.prefix <= resumable => {
                from = verified.prefix;
                found.warnings = verified.warnings;
                found.fingerprints = verified.fingerprints.into_iter().collect();
            }
            Some(_) => conn = self.fresh_replay()?,
            None => {}
        }
        let mut cache = Some(cache);
        loop {
            // After a rebuild (a problem was found), nothing is saved.
            match self.replay(&conn, from, &mut found, cache.take())? {
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
    /// round trip, into `conn`, saving verified prefixes into `cache`.
    fn replay(
        &self,
        conn: &Connection,
        from: usize,
        found: &mut Findings,
        mut cache: Option<&mut dyn ReplayCache>,
    ) -> Result<Next> {
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
        let total = self.migrations.len();
        let resumable = crate::replay_cache::resumable(self.migrations);
        let mut save = |found: &Findings, prefix: usize| {
            if let Some(cache) = cache
                .as_deref_mut()
                .filter(|c| prefix > from && prefix <= resumable && c.wants(prefix, total))
                && found.problems.is_empty()
            {
                let verified = Verified {
                    prefix,
                    warnings: found.warnings.clone(),
                    fingerprints: found.fingerprints.iter().map(|(v, f)| (*v, f.clone())).collect(),
                };
                cache.save(conn, &verified);
            }
        };
        let mut next = Next::Go;
        for (i, m) in self.migrations.iter().enumerate().skip(from) {
            // Here the database holds the plain ups of every migration
            // before this one: the schema right after the previous.
            if let Some(previous) = i.checked_sub(1).map(|p| &self.migrations[p]) {
                let hex = fingerprint(i.checked_sub(from + 1).map(|_| previous))?;
                found.fingerprints.insert(previous.version(), hex);
                save(found, i);
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
            save(found, total);
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
            crate::ready::now(tx.begin(self, &mut waited))?;
        }
        let mut run = |step: Planned<'m>| {
            if in_transaction {
                crate::ready::now(self.step(&mut tx, step, &mut waited))
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
            crate::ready::now(tx.rollback()).map(|()| Next::Go)
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
mod tests;
