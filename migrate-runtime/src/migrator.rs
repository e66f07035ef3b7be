//! The [`Migrator`]: a builder over a list of migrations, and its public
//! operations (apply, migrate to a version, status, pending).

use std::fmt;
use std::time::Duration;

#[cfg(feature = "rusqlite")]
use rusqlite::Connection;

#[cfg(any(feature = "rusqlite", feature = "postgres"))]
use crate::DriftPolicy;
#[cfg(feature = "rusqlite")]
use crate::Report;
use crate::history::Table;
#[cfg(any(feature = "rusqlite", feature = "postgres"))]
use crate::model::Filter;
use crate::plan::{self, Policy};
use crate::{Entry, Error, Event, Migration, Result, State, Status};

/// The default tracking table.
pub const DEFAULT_TABLE: &str = "_migrations";

/// How long [`Migrator::apply`] waits, by default, for another process that
/// holds the write lock (for example another instance applying a long
/// migration).
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// How concurrent runs against one PostgreSQL database exclude each
/// other ([`Migrator::lock`]; config `lock = "advisory" | "table"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lock {
    /// `pg_advisory_xact_lock` on a key derived from the tracking table's
    /// qualified name: released by the server when the transaction ends.
    #[default]
    Advisory,
    /// A row of the table `{table}_lock`, taken with `SELECT … FOR
    /// UPDATE`: for PostgreSQL-compatible servers without advisory locks
    /// (CockroachDB and other distributed engines). While a
    /// `-- migrate:no-transaction` script runs (a row lock lasts one
    /// transaction), the row holds a lease naming the session, which the
    /// others wait for as long as that session exists.
    Table,
}

impl Lock {
    /// The config's spelling: `advisory` or `table`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(migrate_runtime::Lock::Table.as_str(), "table");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Advisory => "advisory",
            Self::Table => "table",
        }
    }
}

impl std::str::FromStr for Lock {
    type Err = String;

    /// Parses the config's spelling.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "advisory" => Ok(Self::Advisory),
            "table" => Ok(Self::Table),
            other => Err(format!(
                "unknown lock mode `{other}`: expected \"advisory\" or \"table\""
            )),
        }
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
    /// [`__code_digest`](Self::__code_digest).
    pub(crate) code_digest: Option<[u8; 16]>,
    /// Shared: the default table's statements are formatted once per
    /// process, not by every `Migrator::new` or `table("_migrations")`
    /// (8 k instructions of a start-up's 2.2 M at 100 migrations,
    /// callgrind).
    pub(crate) table: std::sync::Arc<Table>,
    pub(crate) policy: Policy,
    pub(crate) grouped: bool,
    pub(crate) lock_timeout: Duration,
    pub(crate) schema: Option<String>,
    pub(crate) lock: Lock,
    pub(crate) table_lock_timeout: Option<(Duration, u32)>,
    #[cfg(any(feature = "rusqlite", feature = "postgres"))]
    pub(crate) drift: DriftPolicy,
    #[cfg(any(feature = "rusqlite", feature = "postgres"))]
    pub(crate) ignore: Vec<String>,
    #[cfg(feature = "rusqlite")]
    replay_setup: Option<ReplaySetup<'m>>,
    observer: Option<Observer<'m>>,
    /// Where the server's notices of an async connection are collected
    /// ([`notices_from`](Self::notices_from)).
    #[cfg(feature = "postgres")]
    pub(crate) notices: Option<crate::pg::notice::NoticeForwarder>,
    pub(crate) store_down: bool,
    pub(crate) allow_downgrade: bool,
    /// The tool whose history [`adopt`](Self::adopt) takes over.
    pub(crate) previous: Option<crate::Previous>,
    /// Its versions and ours ([`imported`](Self::imported)).
    pub(crate) imported: &'m [(&'m str, u64)],
}

#[cfg(feature = "rusqlite")]
type ReplaySetup<'m> = Box<dyn Fn(&rusqlite::Connection) -> rusqlite::Result<()> + 'm>;

impl fmt::Debug for Migrator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Migrator");
        d.field("migrations", &self.migrations.len())
            .field("table", &self.table.name)
            .field("allow_out_of_order", &self.policy.allow_out_of_order)
            .field("allow_unknown", &self.policy.allow_unknown)
            .field("allow_modified", &self.policy.allow_modified)
            .field("contract", &self.policy.contract)
            .field("grouped", &self.grouped)
            .field("lock_timeout", &self.lock_timeout);
        #[cfg(any(feature = "rusqlite", feature = "postgres"))]
        d.field("drift", &self.drift).field("ignore", &self.ignore);
        d.field("schema", &self.schema)
            .field("lock", &self.lock)
            .field("table_lock_timeout", &self.table_lock_timeout)
            .field("store_down", &self.store_down)
            .field("allow_downgrade", &self.allow_downgrade)
            .field("adopt", &self.previous)
            .field("imported", &self.imported.len())
            .finish_non_exhaustive()
    }
}

impl<'m> Migrator<'m> {
    /// A migrator over `migrations`, which must be in ascending version order
    /// without duplicates (generated code always is).
    #[must_use]
    pub fn new(migrations: &'m [Migration]) -> Self {
        Self {
            migrations,
            table: Table::shared(DEFAULT_TABLE),
            policy: Policy::default(),
            grouped: false,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            schema: None,
            lock: Lock::Advisory,
            table_lock_timeout: None,
            #[cfg(any(feature = "rusqlite", feature = "postgres"))]
            drift: DriftPolicy::default(),
            #[cfg(any(feature = "rusqlite", feature = "postgres"))]
            ignore: Vec::new(),
            #[cfg(feature = "rusqlite")]
            replay_setup: None,
            observer: None,
            #[cfg(feature = "postgres")]
            notices: None,
            store_down: false,
            allow_downgrade: false,
            previous: None,
            imported: &[],
            code_digest: None,
        }
    }

    /// Generated code only: the digest of this migrator's migrations,
    /// computed by the build (`migrate_runtime::digest_of`), so that a
    /// start-up does not compute it again (about 100 instructions per
    /// migration: 1 M at 10,000). Debug builds check it against the
    /// migrations; a wrong one only makes every start read the whole
    /// history row by row — except in the one case it cannot detect, the
    /// digest of another history that the database happens to carry, which
    /// is why only the generated module, which derives it from the same
    /// files as `MIGRATIONS`, calls this.
    #[doc(hidden)]
    #[must_use]
    pub fn __code_digest(mut self, digest: u128) -> Self {
        self.code_digest = Some(digest.to_be_bytes());
        self
    }

    /// The digest of the code's history: the build's, when the generated
    /// module gave it, else computed.
    #[cfg(any(feature = "rusqlite", feature = "postgres"))]
    pub(crate) fn code_digest(&self) -> [u8; 16] {
        match self.code_digest {
            Some(digest) => {
                debug_assert_eq!(
                    digest,
                    crate::history::history_digest(self.migrations),
                    "the generated module's digest is not its migrations'"
                );
                digest
            }
            None => crate::history::history_digest(self.migrations),
        }
    }

    /// The tracking table's name (default `_migrations`).
    #[must_use]
    pub fn table(mut self, name: &str) -> Self {
        self.table = Table::shared(name);
        self
    }

    /// Applies a pending migration even when a higher version is already
    /// applied (after two branches were merged). Off by default.
    #[must_use]
    pub fn allow_out_of_order(mut self, allow: bool) -> Self {
        self.policy.allow_out_of_order = allow;
        self
    }

    /// Goes on when the database has applied migrations that the code does
    /// not know (an older build against a newer database). Off by default.
    #[must_use]
    pub fn allow_unknown(mut self, allow: bool) -> Self {
        self.policy.allow_unknown = allow;
        self
    }

    /// Goes on when an applied migration's file or name changed since it was
    /// applied. Off by default.
    #[must_use]
    pub fn allow_modified(mut self, allow: bool) -> Self {
        self.policy.allow_modified = allow;
        self
    }

    /// Applies contract migrations (`-- migrate:phase contract`). Off by
    /// default: [`apply`](Self::apply) and [`migrate_to`](Self::migrate_to)
    /// stop before the first pending contract and report it as held
    /// ([`Report::held`](crate::Report::held), [`Event::Held`]), because a
    /// contract removes what the previous version of the app still uses.
    /// Set it once every running instance has the new code (the CLI's
    /// `cargo migrate up --contract`).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Migration, Migrator, Phase, Script, rusqlite::Connection};
    ///
    /// let migrations = [
    ///     Migration::new(1, "users", Script::new("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);", "0001_users.sql")),
    ///     Migration::new(2, "add_full_name", Script::new("ALTER TABLE users ADD COLUMN full_name TEXT;", "0002_add_full_name.sql"))
    ///         .with_phase(Phase::Expand),
    ///     Migration::new(3, "drop_name", Script::new("ALTER TABLE users DROP COLUMN name;", "0003_drop_name.sql"))
    ///         .with_phase(Phase::Contract)
    ///         .with_contract_of(2),
    /// ];
    /// let mut conn = Connection::open_in_memory()?;
    /// let report = Migrator::new(&migrations).apply(&mut conn)?;
    /// assert_eq!(report.applied().count(), 2);
    /// assert_eq!(report.held.map(|h| h.version), Some(3));
    /// let report = Migrator::new(&migrations).contract(true).apply(&mut conn)?;
    /// assert_eq!(report.applied().map(|s| s.version).collect::<Vec<_>>(), [3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn contract(mut self, contract: bool) -> Self {
        self.policy.contract = contract;
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

    /// PostgreSQL: the schema of the tracking table, created when missing,
    /// and put first in the connection's `search_path` while migrations
    /// run (restored after), so their unqualified names land in it and
    /// several apps can share one database. Unset by default (the
    /// connection's own `search_path` decides). SQLite refuses it.
    #[must_use]
    pub fn schema(mut self, schema: &str) -> Self {
        self.schema = Some(schema.to_owned());
        self
    }

    /// PostgreSQL: how concurrent runs exclude each other (default
    /// [`Lock::Advisory`]). SQLite always uses its write lock and refuses
    /// [`Lock::Table`].
    #[must_use]
    pub fn lock(mut self, lock: Lock) -> Self {
        self.lock = lock;
        self
    }

    /// What to do when the database's schema is not what its applied
    /// migrations made (drift): [`DriftPolicy::Error`] (the default)
    /// refuses to migrate and lists the differences, [`DriftPolicy::Warn`]
    /// reports them through [`Event::Drift`] and goes on,
    /// [`DriftPolicy::Off`] does not look. On SQLite the check needs the
    /// schema fingerprints the build records (generated code has them); it
    /// costs one read of `sqlite_schema` per start. On PostgreSQL it
    /// compares with the schema the runtime stored in the tracking table
    /// after its last run (`Off` stores nothing); it costs one catalog
    /// query per start (BENCHMARKS.md).
    ///
    /// Refusing is the default because migrations written for one schema
    /// and run on another are how data gets lost (a table rebuild drops the
    /// column someone added by hand); adopt the change with a migration,
    /// or leave tables out with [`ignore`](Self::ignore).
    #[must_use]
    #[cfg(any(feature = "rusqlite", feature = "postgres"))]
    pub fn drift(mut self, policy: DriftPolicy) -> Self {
        self.drift = policy;
        self
    }

    /// Tables (and their indexes and triggers), views and triggers to leave
    /// out of the drift check: names matching one of `patterns` (`*` any
    /// characters, `?` one), such as the shadow tables of a full-text
    /// index or another tool's tables. An invalid pattern is an error when
    /// the migrator runs.
    #[must_use]
    #[cfg(any(feature = "rusqlite", feature = "postgres"))]
    pub fn ignore<S: AsRef<str>>(mut self, patterns: &[S]) -> Self {
        self.ignore = patterns.iter().map(|p| p.as_ref().to_owned()).collect();
        self
    }

    /// What the drift check and [`schema_diff`](Self::schema_diff) leave
    /// out: the tracking table, the [`ignore`](Self::ignore) patterns, and
    /// the tracking table of the tool [`adopt`](Self::adopt) takes over from.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSet`] for an invalid pattern.
    #[cfg(any(feature = "rusqlite", feature = "postgres"))]
    pub fn filter(&self) -> Result<Filter> {
        let adopted = self.previous.and_then(crate::Previous::table);
        Filter::new(&self.table.name)
            .ignore(&self.ignore)?
            .ignore(&adopted.into_iter().collect::<Vec<_>>())
    }

    /// Calls `setup` with every database the build-time replay
    /// ([`validate`](Self::validate), [`check`](Self::check),
    /// [`replay_versions`](Self::replay_versions)) opens, before anything
    /// runs in it: register there the SQL functions and collations your app
    /// registers on its connections (`normalize`, `BIN2B64`, …), so that
    /// migrations calling them can be replayed. Register the same ones on
    /// the app's connection before [`apply`](Self::apply).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Migration, Migrator, Script};
    /// use migrate_runtime::rusqlite::functions::FunctionFlags;
    /// let migrations = [Migration::new(1, "t", Script::new(
    ///     "CREATE TABLE t (x); INSERT INTO t VALUES (normalize(' A '));", "0001_t.sql"))];
    /// let normalize = |conn: &migrate_runtime::rusqlite::Connection| {
    ///     conn.create_scalar_function("normalize", 1, FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
    ///         Ok(ctx.get::<String>(0)?.trim().to_lowercase())
    ///     })
    /// };
    /// assert!(Migrator::new(&migrations).validate().is_err(), "no such function: normalize");
    /// Migrator::new(&migrations).replay_setup(normalize).validate()?;
    /// # Ok::<(), migrate_runtime::Error>(())
    /// ```
    #[cfg(feature = "rusqlite")]
    #[must_use]
    pub fn replay_setup(mut self, setup: impl Fn(&rusqlite::Connection) -> rusqlite::Result<()> + 'm) -> Self {
        self.replay_setup = Some(Box::new(setup));
        self
    }

    /// Runs the [`replay_setup`](Self::replay_setup) on a replay database.
    #[cfg(feature = "rusqlite")]
    pub(crate) fn set_up_replay(&self, conn: &rusqlite::Connection) -> Result<()> {
        match &self.replay_setup {
            Some(setup) => setup(conn).map_err(Error::db("setting up the replay database (replay_setup)")),
            None => Ok(()),
        }
    }

    /// PostgreSQL: how long each migration's statements wait for a lock on
    /// a table (the server's `lock_timeout`, set for the migration only),
    /// and how many more times a migration that timed out is tried, after a
    /// pause, before it fails. Without it (the default) a migration waits
    /// as long as the connection's `lock_timeout` says (for ever, by
    /// default): an `ALTER TABLE` queued behind a long query then blocks
    /// every other query on that table too. A timeout that remains is an
    /// [`Error::Sql`] saying so. SQLite refuses it.
    #[must_use]
    pub fn table_lock_timeout(mut self, timeout: Duration, retries: u32) -> Self {
        self.table_lock_timeout = Some((timeout, retries));
        self
    }

    /// Calls `observer` as migrations start and finish, for progress output.
    #[must_use]
    pub fn on_event(mut self, observer: impl Fn(&Event<'_>) + 'm) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// PostgreSQL on `tokio-postgres`: reports the server's NOTICEs (and
    /// WARNINGs, INFOs) sent while a migration runs as [`Event::Notice`],
    /// collected by `forwarder` from the connection it
    /// [drives](crate::NoticeForwarder::drive). The sync driver's
    /// counterpart is [`forward_notices`](crate::forward_notices).
    #[cfg(feature = "tokio-postgres")]
    #[must_use]
    pub fn notices_from(mut self, forwarder: &crate::NoticeForwarder) -> Self {
        self.notices = Some(forwarder.clone());
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

    pub(crate) fn notify(&self, event: Event<'_>) {
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
    #[cfg(feature = "rusqlite")]
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
    #[cfg(feature = "rusqlite")]
    pub fn migrate_to(&self, conn: &mut Connection, target: u64) -> Result<Report> {
        self.check_target(target)?;
        self.run(conn, Some(target))
    }

    pub(crate) fn check_target(&self, target: u64) -> Result<()> {
        if target != 0 && plan::find(self.migrations, target).is_none() {
            return Err(Error::UnknownTarget {
                target,
                known: self.migrations.iter().map(Migration::version).collect(),
            });
        }
        Ok(())
    }

    /// Refuses the settings SQLite has no meaning for.
    #[cfg(feature = "rusqlite")]
    pub(crate) fn check_sqlite(&self) -> Result<()> {
        if let Some(schema) = &self.schema {
            return Err(Error::Unsupported {
                what: format!("schema `{schema}` (Migrator::schema) on SQLite"),
                instead: "SQLite has no schemas in PostgreSQL's sense; leave it unset for SQLite databases",
            });
        }
        if self.table_lock_timeout.is_some() {
            return Err(Error::Unsupported {
                what: "a table lock timeout (Migrator::table_lock_timeout) on SQLite".to_owned(),
                instead: "SQLite locks the whole database, and waits as long as Migrator::lock_timeout says; leave it unset for SQLite databases",
            });
        }
        if self.lock == Lock::Table {
            return Err(Error::Unsupported {
                what: "lock = \"table\" (Migrator::lock) on SQLite".to_owned(),
                instead: "SQLite's write lock (BEGIN IMMEDIATE) is always used; leave the lock mode at its default for SQLite databases",
            });
        }
        Ok(())
    }

    /// Every migration's state in `conn`'s database, and the applied
    /// migrations the code does not know. Changes nothing.
    ///
    /// # Errors
    ///
    /// When the tracking table cannot be read.
    #[cfg(feature = "rusqlite")]
    pub fn status(&self, conn: &Connection) -> Result<Status<'m>> {
        self.check_set()?;
        self.check_sqlite()?;
        let history = self.table.read(conn)?;
        Ok(self.status_of(&history))
    }

    /// The state of every migration, given the history.
    pub(crate) fn status_of(&self, history: &[crate::Applied]) -> Status<'m> {
        // A squashed history that does not fit shows as it is: `plan` says why.
        let normalized = crate::squash::normalize(self.migrations, history);
        let history: &[crate::Applied] = normalized.as_deref().unwrap_or(history);
        let mut entries = Vec::with_capacity(self.migrations.len());
        let mut applied = history.iter().peekable();
        let mut unknown = Vec::new();
        for m in self.migrations {
            while let Some(a) = applied.next_if(|a| a.version < m.version()) {
                unknown.push(a.clone());
            }
            let row = applied.next_if(|a| a.version == m.version()).cloned();
            let state = match &row {
                None if m.is_contract() && !self.policy.contract => State::Held,
                None => State::Pending,
                Some(a) if plan::matches(m, a) => State::Applied,
                Some(_) => State::Modified,
            };
            entries.push(Entry {
                migration: m,
                state,
                applied: row,
            });
        }
        unknown.extend(applied.cloned());
        Status {
            entries,
            unknown,
            invalid_indexes: Vec::new(),
        }
    }

    /// The migrations that [`apply`](Self::apply) would run, after the same
    /// checks of the history. Changes nothing.
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply)'s checks.
    #[cfg(feature = "rusqlite")]
    pub fn pending(&self, conn: &Connection) -> Result<Vec<&'m Migration>> {
        self.check_set()?;
        self.check_sqlite()?;
        let history = self.table.read(conn)?;
        Ok(self.plan(&history, None)?.into_iter().map(|p| p.migration).collect())
    }

    pub(crate) fn check_set(&self) -> Result<()> {
        plan::check_set(self.migrations)
    }

    /// This migrator applying contracts too, without its observer and
    /// replay setup: for the test templates, which hold every migration.
    pub(crate) fn applying_contracts(&self) -> Migrator<'m> {
        Migrator {
            migrations: self.migrations,
            code_digest: self.code_digest,
            table: std::sync::Arc::clone(&self.table),
            policy: Policy {
                contract: true,
                ..self.policy
            },
            grouped: self.grouped,
            lock_timeout: self.lock_timeout,
            schema: self.schema.clone(),
            lock: self.lock,
            table_lock_timeout: self.table_lock_timeout,
            #[cfg(any(feature = "rusqlite", feature = "postgres"))]
            drift: self.drift,
            #[cfg(any(feature = "rusqlite", feature = "postgres"))]
            ignore: self.ignore.clone(),
            #[cfg(feature = "rusqlite")]
            replay_setup: None,
            observer: None,
            store_down: self.store_down,
            allow_downgrade: self.allow_downgrade,
            previous: self.previous,
            imported: self.imported,
            #[cfg(feature = "postgres")]
            notices: self.notices.clone(),
        }
    }

    /// The contract migration a run towards `target` from `history` stops
    /// before, if any (see [`contract`](Self::contract)).
    pub(crate) fn held(&self, history: &[crate::Applied], target: Option<u64>) -> Result<Option<&'m Migration>> {
        let history = crate::squash::normalize(self.migrations, history)?;
        Ok(plan::held(self.migrations, &history, self.policy, target))
    }

    /// A report of a run that had nothing to apply: empty, or naming the
    /// contract it holds (announced through [`Event::Held`]).
    pub(crate) fn idle_report(&self, history: &[crate::Applied], target: Option<u64>) -> Result<crate::Report> {
        let mut report = crate::Report::default();
        self.hold(history, target, &mut report)?;
        Ok(report)
    }

    /// Records in `report` the contract a run from `history` held, and
    /// announces it.
    pub(crate) fn hold(
        &self,
        history: &[crate::Applied],
        target: Option<u64>,
        report: &mut crate::Report,
    ) -> Result<()> {
        self.announce_held(self.held(history, target)?, report);
        Ok(())
    }

    /// Records `held` in `report` and announces it.
    pub(crate) fn announce_held(&self, held: Option<&'m Migration>, report: &mut crate::Report) {
        if let Some(m) = held {
            self.notify(Event::Held { migration: m });
            report.held = Some(crate::Held::of(m));
        }
    }

    /// The plan towards `target` (`None`: the latest) from `history`.
    pub(crate) fn plan(&self, history: &[crate::Applied], target: Option<u64>) -> Result<Vec<plan::Planned<'m>>> {
        let history = crate::squash::normalize(self.migrations, history)?;
        plan::plan(self.migrations, &history, self.policy, target)
    }
}
