//! The [`Migrator`]: checks the history, applies and rolls back migrations.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use crate::history::{Applied, Table};
use crate::sql::{line_at, statements};
use crate::{Direction, Error, Migration, Result, Script};

/// The default tracking table.
pub const DEFAULT_TABLE: &str = "_migrations";

/// How long [`Migrator::apply`] waits, by default, for another process that
/// holds the write lock (for example another instance applying a long
/// migration).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Something the migrator is doing, for progress output.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Another process holds the write lock; waiting for it.
    Waiting {
        /// How long we wait at most.
        timeout: Duration,
    },
    /// A migration starts.
    Started {
        /// The migration.
        migration: &'a Migration,
        /// Up or down.
        direction: Direction,
    },
    /// A migration finished and was committed.
    Finished {
        /// The migration.
        migration: &'a Migration,
        /// Up or down.
        direction: Direction,
        /// How long it took.
        duration: Duration,
    },
}

/// One migration applied or rolled back by a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The version.
    pub version: u64,
    /// The name.
    pub name: String,
    /// Applied (up) or rolled back (down).
    pub direction: Direction,
    /// How long it took.
    pub duration: Duration,
}

/// What a call to [`Migrator::apply`] or [`Migrator::migrate_to`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The migrations applied or rolled back, in the order they ran.
    pub steps: Vec<Step>,
    /// How long we waited for another process's write lock, if we had to.
    pub waited: Option<Duration>,
}

impl Report {
    /// The migrations applied by this call.
    pub fn applied(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.direction == Direction::Up)
    }

    /// The migrations rolled back by this call.
    pub fn rolled_back(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.direction == Direction::Down)
    }

    /// Whether the call changed nothing.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl fmt::Display for Report {
    /// One line per step: `applied 2 add_email (3 ms)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(waited) = self.waited {
            writeln!(
                f,
                "waited {} ms for another process's migration lock",
                waited.as_millis()
            )?;
        }
        if self.steps.is_empty() {
            return writeln!(f, "nothing to do: the database is up to date");
        }
        for s in &self.steps {
            let verb = match s.direction {
                Direction::Up => "applied",
                Direction::Down => "rolled back",
            };
            writeln!(f, "{verb} {} {} ({} ms)", s.version, s.name, s.duration.as_millis())?;
        }
        Ok(())
    }
}

/// Where one migration stands in a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Applied, and the file is the one that was applied.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the file (or its name) has changed since.
    Modified,
}

/// One migration of the code and its state in a database.
#[derive(Clone, Debug)]
pub struct Entry<'m> {
    /// The migration.
    pub migration: &'m Migration,
    /// Its state.
    pub state: State,
    /// Its tracking row, when applied.
    pub applied: Option<Applied>,
}

/// Every migration's state in a database, from [`Migrator::status`].
#[derive(Clone, Debug)]
pub struct Status<'m> {
    /// The migrations of the code, oldest first.
    pub entries: Vec<Entry<'m>>,
    /// Applied migrations the code does not have.
    pub unknown: Vec<Applied>,
}

impl Status<'_> {
    /// The migrations not applied yet.
    pub fn pending(&self) -> impl Iterator<Item = &Migration> {
        self.entries
            .iter()
            .filter(|e| e.state == State::Pending)
            .map(|e| e.migration)
    }
}

type Observer<'m> = Box<dyn Fn(&Event<'_>) + 'm>;

/// Applies, rolls back and checks a list of migrations against SQLite
/// databases.
///
/// # Examples
///
/// ```
/// use migrate_runtime::{Migration, Migrator, Script, rusqlite::Connection};
///
/// let migrations = [Migration::new(1, "create_users", Script::new(
///     "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
///     "migrations/0001_create_users.sql",
/// ))];
/// let mut conn = Connection::open_in_memory()?;
/// let report = Migrator::new(&migrations).apply(&mut conn)?;
/// assert_eq!(report.applied().count(), 1);
/// // Running again does nothing.
/// assert!(Migrator::new(&migrations).apply(&mut conn)?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Migrator<'m> {
    pub(crate) migrations: &'m [Migration],
    pub(crate) table: Table,
    allow_out_of_order: bool,
    allow_unknown: bool,
    allow_modified: bool,
    grouped: bool,
    pub(crate) lock_timeout: Duration,
    observer: Option<Observer<'m>>,
}

impl fmt::Debug for Migrator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migrator")
            .field("migrations", &self.migrations.len())
            .field("table", &self.table.name)
            .field("allow_out_of_order", &self.allow_out_of_order)
            .field("allow_unknown", &self.allow_unknown)
            .field("allow_modified", &self.allow_modified)
            .field("grouped", &self.grouped)
            .field("lock_timeout", &self.lock_timeout)
            .finish_non_exhaustive()
    }
}

/// One step of a plan.
#[derive(Clone, Copy)]
struct Planned<'m> {
    migration: &'m Migration,
    direction: Direction,
}

impl<'m> Migrator<'m> {
    /// A migrator over `migrations`, which must be in ascending version order
    /// without duplicates (generated code always is).
    pub fn new(migrations: &'m [Migration]) -> Self {
        Self {
            migrations,
            table: Table::new(DEFAULT_TABLE),
            allow_out_of_order: false,
            allow_unknown: false,
            allow_modified: false,
            grouped: false,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            observer: None,
        }
    }

    /// The tracking table's name (default `_migrations`).
    #[must_use]
    pub fn table(mut self, name: &str) -> Self {
        self.table = Table::new(name);
        self
    }

    /// Applies a pending migration even when a higher version is already
    /// applied (after two branches were merged). Off by default.
    #[must_use]
    pub fn allow_out_of_order(mut self, allow: bool) -> Self {
        self.allow_out_of_order = allow;
        self
    }

    /// Goes on when the database has applied migrations that the code does
    /// not know (an older build against a newer database). Off by default.
    #[must_use]
    pub fn allow_unknown(mut self, allow: bool) -> Self {
        self.allow_unknown = allow;
        self
    }

    /// Goes on when an applied migration's file or name changed since it was
    /// applied. Off by default.
    #[must_use]
    pub fn allow_modified(mut self, allow: bool) -> Self {
        self.allow_modified = allow;
        self
    }

    /// Applies all pending migrations in one transaction: all or none.
    /// Off by default (one transaction per migration).
    #[must_use]
    pub fn grouped(mut self, grouped: bool) -> Self {
        self.grouped = grouped;
        self
    }

    /// How long to wait for another process's write lock (default 60 s).
    #[must_use]
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Calls `observer` as migrations start and finish, for progress output.
    #[must_use]
    pub fn on_event(mut self, observer: impl Fn(&Event<'_>) + 'm) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// The migrations, oldest first.
    pub fn migrations(&self) -> &'m [Migration] {
        self.migrations
    }

    /// The tracking table's name.
    pub fn table_name(&self) -> &str {
        &self.table.name
    }

    fn notify(&self, event: Event<'_>) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }

    /// Applies every pending migration, oldest first, each in its own
    /// transaction together with its tracking row (or all in one with
    /// [`grouped`](Self::grouped)).
    ///
    /// Before changing anything it checks the history against the code.
    /// When another process is migrating the same database, it waits for it
    /// and then applies only what is still pending.
    ///
    /// # Errors
    ///
    /// [`Error::Modified`], [`Error::Renamed`], [`Error::UnknownApplied`] or
    /// [`Error::OutOfOrder`] when history and code disagree (nothing is
    /// changed); [`Error::Sql`] or [`Error::ForeignKey`] when a migration
    /// fails (it is rolled back, the ones before it stay applied);
    /// [`Error::Locked`] when the lock timeout passes.
    ///
    /// # Examples
    ///
    /// ```
    /// # use migrate_runtime::{Migration, Migrator, Script, rusqlite::Connection};
    /// let migrations = [Migration::new(1, "t", Script::new("CREATE TABLE t (x);", "0001_t.sql"))];
    /// let mut conn = Connection::open_in_memory()?;
    /// let report = Migrator::new(&migrations).apply(&mut conn)?;
    /// print!("{report}"); // applied 1 t (0 ms)
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply(&self, conn: &mut Connection) -> Result<Report> {
        self.run(conn, None)
    }

    /// Migrates up or down to `target`: afterwards every migration up to and
    /// including `target` is applied and none above it. `0` rolls back
    /// everything.
    ///
    /// Going down runs the down scripts of the applied migrations above
    /// `target`, newest first; it refuses before touching anything when one
    /// of them has no down script.
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply), and [`Error::UnknownTarget`],
    /// [`Error::Irreversible`] or [`Error::UnknownRollback`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use migrate_runtime::{Migration, Migrator, Script, rusqlite::Connection};
    /// let migrations = [Migration::new(1, "t", Script::new("CREATE TABLE t (x);", "0001_t.up.sql"))
    ///     .with_down(Script::new("DROP TABLE t;", "0001_t.down.sql"))];
    /// let mut conn = Connection::open_in_memory()?;
    /// let migrator = Migrator::new(&migrations);
    /// migrator.apply(&mut conn)?;
    /// let report = migrator.migrate_to(&mut conn, 0)?;
    /// assert_eq!(report.rolled_back().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn migrate_to(&self, conn: &mut Connection, target: u64) -> Result<Report> {
        if target != 0 && self.find(target).is_none() {
            return Err(Error::UnknownTarget {
                target,
                known: self.migrations.iter().map(Migration::version).collect(),
            });
        }
        self.run(conn, Some(target))
    }

    /// Every migration's state in `conn`'s database, and the applied
    /// migrations the code does not know. Changes nothing.
    ///
    /// # Errors
    ///
    /// When the tracking table cannot be read.
    pub fn status(&self, conn: &Connection) -> Result<Status<'m>> {
        self.check_set()?;
        let history = self.table.read(conn)?;
        let mut entries = Vec::with_capacity(self.migrations.len());
        let mut applied = history.iter().peekable();
        let mut unknown = Vec::new();
        for m in self.migrations {
            while let Some(a) = applied.next_if(|a| a.version < m.version()) {
                unknown.push(a.clone());
            }
            let row = applied.next_if(|a| a.version == m.version()).cloned();
            let state = match &row {
                None => State::Pending,
                Some(a) if self.matches(m, a) => State::Applied,
                Some(_) => State::Modified,
            };
            entries.push(Entry {
                migration: m,
                state,
                applied: row,
            });
        }
        unknown.extend(applied.cloned());
        Ok(Status { entries, unknown })
    }

    /// The migrations that [`apply`](Self::apply) would run, after the same
    /// checks of the history. Changes nothing.
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply)'s checks.
    pub fn pending(&self, conn: &Connection) -> Result<Vec<&'m Migration>> {
        self.check_set()?;
        let history = self.table.read(conn)?;
        Ok(self.plan(&history, None)?.into_iter().map(|p| p.migration).collect())
    }

    /// Runs one migration in its own transaction (used by `validate`).
    pub(crate) fn one_step(&self, session: &Session<'_>, m: &'m Migration, direction: Direction) -> Result<Duration> {
        let start = Instant::now();
        let script = match direction {
            Direction::Up => m.up(),
            Direction::Down => m.down().ok_or_else(|| irreversible(m))?,
        };
        if script.no_transaction() {
            self.run_script(session, m, direction, script, false)?;
            let mut tx = session.begin(self, &mut None)?;
            self.record(session.conn, m, direction, start.elapsed())?;
            tx.commit()?;
        } else {
            let mut tx = session.begin(self, &mut None)?;
            self.step_in_tx(session, m, direction)?;
            self.record(session.conn, m, direction, start.elapsed())?;
            tx.commit()?;
        }
        Ok(start.elapsed())
    }

    fn find(&self, version: u64) -> Option<&'m Migration> {
        self.migrations
            .binary_search_by_key(&version, Migration::version)
            .ok()
            .map(|i| &self.migrations[i])
    }

    fn matches(&self, m: &Migration, a: &Applied) -> bool {
        a.name == m.name() && Some(m.checksum()) == crate::Checksum::parse(&a.checksum)
    }

    pub(crate) fn check_set(&self) -> Result<()> {
        for pair in self.migrations.windows(2) {
            if pair[0].version() >= pair[1].version() {
                return Err(Error::InvalidSet {
                    message: format!(
                        "migration {} `{}` comes after {} `{}`; versions must be unique and ascending",
                        pair[1].version(),
                        pair[1].name(),
                        pair[0].version(),
                        pair[0].name()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Checks the history against the code and plans the steps towards
    /// `target` (`None`: the latest), downs first (newest first), then ups.
    fn plan(&self, history: &[Applied], target: Option<u64>) -> Result<Vec<Planned<'m>>> {
        let mut unknown = Vec::new();
        let mut applied = BTreeSet::new();
        for a in history {
            match self.find(a.version) {
                None => unknown.push((a.version, a.name.clone())),
                Some(m) => {
                    applied.insert(a.version);
                    if self.allow_modified {
                        continue;
                    }
                    if a.name != m.name() {
                        return Err(Error::Renamed {
                            version: m.version(),
                            applied_name: a.name.clone(),
                            name: m.name().to_owned(),
                            file: m.up().file().to_owned(),
                        });
                    }
                    if Some(m.checksum()) != crate::Checksum::parse(&a.checksum) {
                        return Err(Error::Modified {
                            version: m.version(),
                            name: m.name().to_owned(),
                            file: m.up().file().to_owned(),
                            applied: a.checksum.clone(),
                            current: m.checksum().to_string(),
                        });
                    }
                }
            }
        }
        if !unknown.is_empty() && !self.allow_unknown {
            return Err(Error::UnknownApplied { versions: unknown });
        }
        let limit = target.unwrap_or(u64::MAX);
        let mut steps = Vec::new();
        // Downs: applied above the target, newest first.
        for a in history.iter().rev().take_while(|a| a.version > limit) {
            let Some(m) = self.find(a.version) else {
                return Err(Error::UnknownRollback {
                    version: a.version,
                    name: a.name.clone(),
                });
            };
            if m.down().is_none() {
                return Err(irreversible(m));
            }
            steps.push(Planned {
                migration: m,
                direction: Direction::Down,
            });
        }
        // Ups: pending up to the target, oldest first.
        let latest_kept = history.iter().map(|a| a.version).filter(|&v| v <= limit).max();
        for m in self.migrations.iter().take_while(|m| m.version() <= limit) {
            if applied.contains(&m.version()) {
                continue;
            }
            if let Some(latest) = latest_kept.filter(|&l| l > m.version())
                && !self.allow_out_of_order
            {
                return Err(Error::OutOfOrder {
                    version: m.version(),
                    name: m.name().to_owned(),
                    file: m.up().file().to_owned(),
                    latest_applied: latest,
                });
            }
            steps.push(Planned {
                migration: m,
                direction: Direction::Up,
            });
        }
        Ok(steps)
    }

    fn run(&self, conn: &mut Connection, target: Option<u64>) -> Result<Report> {
        self.check_set()?;
        if !conn.is_autocommit() {
            return Err(Error::InTransaction);
        }
        // Fast path, without the write lock: most starts have nothing to do,
        // and the whole history is verified in one allocation-free pass.
        if target.is_none() && self.table.matches_exactly(conn, self.migrations) {
            return Ok(Report::default());
        }
        let history = self.table.read(conn)?;
        let plan = self.plan(&history, target)?;
        if plan.is_empty() {
            return Ok(Report::default());
        }
        if self.grouped
            && let Some(p) = plan.iter().find(|p| script_of(p).is_some_and(Script::no_transaction))
        {
            return Err(Error::NoTransactionInGroup {
                version: p.migration.version(),
                name: p.migration.name().to_owned(),
                file: script_of(p).map(|s| s.file().to_owned()).unwrap_or_default(),
            });
        }
        let session = Session::start(conn, self.lock_timeout)?;
        let mut report = Report::default();
        let result = self.run_locked(&session, target, &mut report);
        let restored = session.end();
        result.and(restored).map(|()| report)
    }

    /// Applies the plan one locked transaction at a time, re-reading the
    /// history under the lock whenever another process changed it.
    fn run_locked(&self, session: &Session<'_>, target: Option<u64>, report: &mut Report) -> Result<()> {
        let conn = session.conn;
        let mut seen: Option<(i64, Option<u64>)> = None;
        let mut plan: Vec<Planned<'m>> = Vec::new();
        let mut created = false;
        loop {
            let mut tx = session.begin(self, &mut report.waited)?;
            if !created {
                self.table.create(conn)?;
                created = true;
            }
            let summary = self.table.summary(conn)?;
            if seen != Some(summary) {
                let history = self.table.read(conn)?;
                plan = self.plan(&history, target)?;
                plan.reverse(); // pop() takes the next step
            }
            let Some(next) = plan.pop() else {
                return tx.rollback();
            };
            let steps: Vec<Planned<'m>> = if self.grouped {
                std::iter::once(next).chain(plan.drain(..).rev()).collect()
            } else {
                vec![next]
            };
            for step in steps {
                let (m, direction) = (step.migration, step.direction);
                let start = Instant::now();
                self.notify(Event::Started {
                    migration: m,
                    direction,
                });
                let script = script_of(&step).ok_or_else(|| irreversible(m))?;
                if script.no_transaction() {
                    // Outside a transaction: release the lock, run, then record.
                    tx.rollback()?;
                    self.run_script(session, m, direction, script, false)?;
                    tx = session.begin(self, &mut report.waited)?;
                } else {
                    self.step_in_tx(session, m, direction)?;
                }
                let duration = start.elapsed();
                self.record(conn, m, direction, duration)?;
                if !self.grouped {
                    seen = Some(self.table.summary(conn)?);
                    tx.commit()?;
                }
                self.notify(Event::Finished {
                    migration: m,
                    direction,
                    duration,
                });
                report.steps.push(Step {
                    version: m.version(),
                    name: m.name().to_owned(),
                    direction,
                    duration,
                });
            }
            if self.grouped {
                seen = Some(self.table.summary(conn)?);
                tx.commit()?;
            }
        }
    }

    fn record(&self, conn: &Connection, m: &Migration, direction: Direction, duration: Duration) -> Result<()> {
        match direction {
            Direction::Up => self.table.insert(
                conn,
                m.version_i64(),
                m.name(),
                &m.checksum().to_string(),
                i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
            ),
            Direction::Down => self.table.delete(conn, m.version_i64()),
        }
    }

    /// Runs a migration's script inside the open transaction, with the
    /// foreign-key check SQLite's table-rebuild procedure asks for.
    fn step_in_tx(&self, session: &Session<'_>, m: &'m Migration, direction: Direction) -> Result<()> {
        let conn = session.conn;
        let script = match direction {
            Direction::Up => m.up(),
            Direction::Down => m.down().ok_or_else(|| irreversible(m))?,
        };
        if !session.foreign_keys {
            self.run_script(session, m, direction, script, true)?;
            return Ok(());
        }
        let savepoint = |sql: &str| conn.execute_batch(sql).map_err(Error::db("checking foreign keys"));
        savepoint("SAVEPOINT migrate_foreign_keys")?;
        let touched = self.run_script(session, m, direction, script, true)?;
        let after = violations(session, &touched)?;
        if !after.is_empty() {
            // A database may hold violations from before; refuse only those
            // this migration adds. Count them in the state before it.
            savepoint("ROLLBACK TO migrate_foreign_keys")?;
            let tables: BTreeSet<String> = after.keys().map(|(t, _)| t.clone()).collect();
            let before = violations_in(conn, &tables)?;
            self.run_script(session, m, direction, script, true)?;
            for ((table, parent), rows) in after {
                let old = before.get(&(table.clone(), parent.clone())).copied().unwrap_or(0);
                if rows > old {
                    return Err(Error::ForeignKey {
                        direction,
                        version: m.version(),
                        name: m.name().to_owned(),
                        file: script.file().to_owned(),
                        table,
                        parent,
                        rows: rows - old,
                    });
                }
            }
        }
        savepoint("RELEASE migrate_foreign_keys")?;
        Ok(())
    }

    /// Runs `script` statement by statement, so a failure names its line.
    /// Returns the tables the script wrote to, when foreign keys are checked.
    pub(crate) fn run_script(
        &self,
        session: &Session<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
        in_transaction: bool,
    ) -> Result<BTreeSet<String>> {
        let conn = session.conn;
        let sql = script.sql();
        let run = || {
            for stmt in statements(sql) {
                if let Err(e) = conn.execute_batch(stmt.text) {
                    let line = match &e {
                        rusqlite::Error::SqlInputError { offset, .. } => {
                            line_at(sql, stmt.offset + usize::try_from(*offset).unwrap_or(0))
                        }
                        _ => stmt.line,
                    };
                    return Err(Error::Sql {
                        direction,
                        version: m.version(),
                        name: m.name().to_owned(),
                        file: script.file().to_owned(),
                        line,
                        statement: stmt.text.to_owned(),
                        message: crate::error::message_of(&e),
                        code: e.sqlite_error_code(),
                        rolled_back: in_transaction,
                    });
                }
            }
            Ok(())
        };
        if session.foreign_keys && in_transaction {
            session.take_written();
            let result = run();
            let touched = session.take_written();
            result.map(|()| touched)
        } else {
            run().map(|()| BTreeSet::new())
        }
    }
}

/// Runs `f` with an authorizer that collects the tables `pick` names in
/// each statement SQLite prepares meanwhile (what statements touch is known
/// at prepare time, whatever they do when run).
pub(crate) fn tables_seen<T>(
    conn: &Connection,
    pick: for<'a> fn(&AuthAction<'a>) -> Option<&'a str>,
    f: impl FnOnce() -> T,
) -> (T, BTreeSet<String>) {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let sink = Arc::clone(&seen);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        if let Some(table) = pick(&ctx.action)
            && let Ok(mut set) = sink.lock()
        {
            set.insert(table.to_owned());
        }
        Authorization::Allow
    }));
    let out = f();
    conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
    let set = seen.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    (out, set)
}

fn irreversible(m: &Migration) -> Error {
    Error::Irreversible {
        version: m.version(),
        name: m.name().to_owned(),
        file: m.up().file().to_owned(),
    }
}

fn script_of<'a>(p: &Planned<'a>) -> Option<&'a Script> {
    match p.direction {
        Direction::Up => Some(p.migration.up()),
        Direction::Down => p.migration.down(),
    }
}

/// The table whose rows or definition a statement changes.
fn written_table<'a>(action: &AuthAction<'a>) -> Option<&'a str> {
    match *action {
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::CreateTable { table_name }
        | AuthAction::DropTable { table_name }
        | AuthAction::AlterTable { table_name, .. } => Some(table_name),
        _ => None,
    }
}

type Violations = BTreeMap<(String, String), u64>;

/// Foreign-key violations in the tables `touched` and in the tables whose
/// keys point at them: only what a migration can have affected.
fn violations(session: &Session<'_>, touched: &BTreeSet<String>) -> Result<Violations> {
    if touched.is_empty() {
        return Ok(Violations::new());
    }
    let conn = session.conn;
    let mut tables = touched.clone();
    let mut keys = conn
        .prepare_cached("SELECT \"table\" FROM pragma_foreign_key_list(?1)")
        .map_err(Error::db("checking foreign keys"))?;
    let mut with_keys = session.tables_with_keys.borrow_mut();
    let mut stale = false;
    if let Some(known) = with_keys.as_mut() {
        // Keep the list of tables with foreign keys up to date for the
        // tables this migration touched; a table that is gone (dropped, or
        // renamed away) means the list is rebuilt.
        for t in touched {
            let parents: Vec<String> = keys
                .query_map([t], |r| r.get(0))
                .and_then(Iterator::collect)
                .map_err(Error::db("checking foreign keys"))?;
            let exists = conn
                .prepare_cached("SELECT 1 FROM pragma_table_list(?1)")
                .and_then(|mut s| s.exists([t]))
                .map_err(Error::db("checking foreign keys"))?;
            stale |= !exists;
            if parents.is_empty() {
                known.remove(t);
            } else {
                known.insert(t.clone());
            }
        }
    }
    if stale || with_keys.is_none() {
        let mut all = conn
            .prepare_cached(
                "SELECT m.name FROM sqlite_schema AS m WHERE m.type = 'table' AND m.sql LIKE '%references%' \
                 AND EXISTS (SELECT 1 FROM pragma_foreign_key_list(m.name))",
            )
            .map_err(Error::db("checking foreign keys"))?;
        let names = all
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(Iterator::collect)
            .map_err(Error::db("checking foreign keys"))?;
        *with_keys = Some(names);
    }
    if with_keys.as_ref().is_some_and(BTreeSet::is_empty) {
        // No table has a foreign key, so none can be violated.
        return Ok(Violations::new());
    }
    for child in with_keys.iter().flatten() {
        let parents: Vec<String> = keys
            .query_map([child], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(Error::db("checking foreign keys"))?;
        if parents
            .iter()
            .any(|p| touched.iter().any(|t| t.eq_ignore_ascii_case(p)))
        {
            tables.insert(child.clone());
        }
    }
    violations_in(conn, &tables)
}

fn violations_in(conn: &Connection, tables: &BTreeSet<String>) -> Result<Violations> {
    let mut out = Violations::new();
    let mut check = conn
        .prepare_cached("SELECT \"table\", parent, count(*) FROM pragma_foreign_key_check(?1) GROUP BY 1, 2")
        .map_err(Error::db("checking foreign keys"))?;
    for t in tables {
        let rows = check
            .query_map([t], |r| Ok(((r.get(0)?, r.get(1)?), r.get::<_, i64>(2)?)))
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>);
        match rows {
            Ok(rows) => out.extend(rows.into_iter().map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))),
            // The table is gone in this state (it was created by the migration).
            Err(e) if e.to_string().contains("no such table") => {}
            Err(e) => return Err(Error::db("checking foreign keys")(e)),
        }
    }
    Ok(out)
}

/// Connection settings changed for the duration of a run, restored after.
pub(crate) struct Session<'c> {
    pub(crate) conn: &'c Connection,
    foreign_keys: bool,
    busy_timeout: i64,
    /// Tables that have foreign keys, when known: where to look for the
    /// children of a table a migration changed.
    tables_with_keys: std::cell::RefCell<Option<BTreeSet<String>>>,
    /// The tables written by statements prepared since it was last emptied,
    /// filled by an authorizer installed once per run (installing one
    /// expires every prepared statement, so not once per migration).
    written: Arc<Mutex<BTreeSet<String>>>,
}

impl<'c> Session<'c> {
    pub(crate) fn start(conn: &'c Connection, lock_timeout: Duration) -> Result<Self> {
        let pragma = |name: &str| {
            conn.pragma_query_value(None, name, |r| r.get::<_, i64>(0))
                .map_err(Error::db(format!("reading PRAGMA {name}")))
        };
        let foreign_keys = pragma("foreign_keys")? != 0;
        let busy_timeout = pragma("busy_timeout")?;
        conn.busy_timeout(lock_timeout)
            .map_err(Error::db("setting the lock timeout"))?;
        if foreign_keys {
            // SQLite's table-rebuild procedure: foreign keys off outside the
            // transaction, checked before commit (see step_in_tx).
            conn.execute_batch("PRAGMA foreign_keys = OFF")
                .map_err(Error::db("turning foreign keys off"))?;
        }
        let session = Self {
            conn,
            foreign_keys,
            busy_timeout,
            tables_with_keys: std::cell::RefCell::new(None),
            written: Arc::default(),
        };
        session.watch_writes();
        Ok(session)
    }

    /// Installs the authorizer that records written tables (again, after
    /// something else replaced it), when foreign keys are checked.
    pub(crate) fn watch_writes(&self) {
        if !self.foreign_keys {
            return;
        }
        let sink = Arc::clone(&self.written);
        self.conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            if let Some(table) = written_table(&ctx.action)
                && let Ok(mut set) = sink.lock()
            {
                set.insert(table.to_owned());
            }
            Authorization::Allow
        }));
    }

    /// Empties the written tables and returns what they were.
    fn take_written(&self) -> BTreeSet<String> {
        self.written
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    pub(crate) fn end(self) -> Result<()> {
        if self.foreign_keys {
            self.conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        }
        let restore_fk = if self.foreign_keys {
            self.conn.execute_batch("PRAGMA foreign_keys = ON")
        } else {
            Ok(())
        };
        let ms = u64::try_from(self.busy_timeout).unwrap_or(0);
        self.conn
            .busy_timeout(Duration::from_millis(ms))
            .and(restore_fk)
            .map_err(Error::db("restoring the connection's settings"))
    }

    /// `BEGIN IMMEDIATE`: takes the write lock before the history is read,
    /// waiting up to the lock timeout for another process.
    fn begin(&self, migrator: &Migrator<'_>, waited: &mut Option<Duration>) -> Result<Tx<'c>> {
        let conn = self.conn;
        let timeout = migrator.lock_timeout;
        let set_timeout = |d| conn.busy_timeout(d).map_err(Error::db("setting the lock timeout"));
        set_timeout(Duration::ZERO)?;
        let first = conn.execute_batch("BEGIN IMMEDIATE");
        let result = match first {
            Err(e) if is_busy(&e) => {
                migrator.notify(Event::Waiting { timeout });
                let start = Instant::now();
                set_timeout(timeout)?;
                let second = conn.execute_batch("BEGIN IMMEDIATE");
                let spent = start.elapsed();
                *waited = Some(waited.unwrap_or_default() + spent);
                match second {
                    Err(e) if is_busy(&e) => Err(Error::Locked { waited: spent }),
                    other => other.map_err(Error::db("starting a transaction")),
                }
            }
            other => other.map_err(Error::db("starting a transaction")),
        };
        set_timeout(timeout)?;
        result.map(|()| Tx { conn, open: true })
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// An open transaction, rolled back when dropped without `commit`.
struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl Tx<'_> {
    fn commit(&mut self) -> Result<()> {
        self.open = false;
        self.conn.execute_batch("COMMIT").map_err(|e| {
            let _ = self.conn.execute_batch("ROLLBACK");
            Error::db("committing")(e)
        })
    }

    fn rollback(&mut self) -> Result<()> {
        if std::mem::take(&mut self.open) && !self.conn.is_autocommit() {
            self.conn.execute_batch("ROLLBACK").map_err(Error::db("rolling back"))?;
        }
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        let _ = self.rollback();
    }
}
