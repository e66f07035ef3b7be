//! What the runner reports: progress events, the steps a call took, and
//! where each migration stands in a database.

use std::fmt;
use std::time::Duration;

use crate::{Applied, Direction, Migration};

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
    /// The run stopped before a contract migration (`-- migrate:phase
    /// contract`): it and the migrations after it stay pending until a run
    /// with [`Migrator::contract`](crate::Migrator::contract) set.
    Held {
        /// The contract migration.
        migration: &'a Migration,
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
    /// A batched backfill (`-- migrate:batch N`) committed a batch; also
    /// sent once before the first batch of a run (`batches` then counts
    /// the batches an earlier, interrupted run committed).
    Backfill {
        /// The migration.
        migration: &'a Migration,
        /// Rows of the table walked so far (by this run and the runs it
        /// resumes), whether the `WHERE` matched them or not.
        rows_done: u64,
        /// Rows of the table to walk: those done, and those left when
        /// this run started (rows inserted later, above the range, are
        /// the app's to write).
        rows_total: u64,
        /// Rows the `UPDATE` changed so far.
        rows_updated: u64,
        /// Batches committed so far.
        batches: u64,
        /// Rows walked per second by this run.
        rate: f64,
    },
    /// PostgreSQL: indexes left INVALID, usually by a `CREATE INDEX
    /// CONCURRENTLY` that failed or was interrupted (or one being built by
    /// another session right now). They take writes but answer no query;
    /// drop each (`DROP INDEX CONCURRENTLY name`) and build it again.
    InvalidIndexes {
        /// The indexes, schema-qualified.
        indexes: &'a [String],
    },
    /// PostgreSQL: the server sent a NOTICE, WARNING or INFO message while
    /// the migration's script ran (`RAISE NOTICE`, "… does not exist,
    /// skipping"); reported when the script ends, failed or not. Only on
    /// connections made with `forward_notices` (sync driver, feature `postgres`),
    /// or driven by the migrator's `NoticeForwarder`
    /// (`tokio-postgres`, see `Migrator::notices_from`).
    Notice {
        /// The migration.
        migration: &'a Migration,
        /// Up or down.
        direction: Direction,
        /// What the server said.
        notice: &'a Notice,
    },
    /// The database's schema is not what its applied migrations made, and
    /// the [drift policy](crate::Migrator::drift) is to warn.
    #[cfg(any(feature = "rusqlite", feature = "postgres"))]
    Drift {
        /// How it differs, grouped by table.
        differences: &'a [crate::model::Difference],
    },
}

/// A message the server sent while a migration ran ([`Event::Notice`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Notice {
    /// `NOTICE`, `WARNING`, `INFO`, … as the server names it.
    pub severity: String,
    /// The message.
    pub message: String,
    /// The server's detail, if any.
    pub detail: Option<String>,
    /// The server's hint, if any.
    pub hint: Option<String>,
}

/// One migration applied or rolled back by a call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

/// What a call to [`Migrator::apply`](crate::Migrator::apply) or
/// [`Migrator::migrate_to`](crate::Migrator::migrate_to) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The migrations applied or rolled back, in the order they ran.
    pub steps: Vec<Step>,
    /// How long we waited for another process's write lock, if we had to.
    pub waited: Option<Duration>,
    /// The migrations recorded as applied without running them, taken
    /// over from another tool's history ([`Migrator::adopt`](crate::Migrator::adopt)).
    pub adopted: Vec<u64>,
    /// The contract migration the call stopped before, when it held one
    /// (see [`Migrator::contract`](crate::Migrator::contract)).
    pub held: Option<Held>,
}

/// A contract migration that a call held back ([`Report::held`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Held {
    /// The version.
    pub version: u64,
    /// The name.
    pub name: String,
    /// The expand migration it completes (`-- migrate:contract-of`).
    pub contract_of: Option<u64>,
}

impl Held {
    /// The record of `migration` held back.
    pub(crate) fn of(migration: &Migration) -> Self {
        Self {
            version: migration.version(),
            name: migration.name().to_owned(),
            contract_of: migration.contract_of(),
        }
    }
}

/// How to release a held contract, as reports and `status` say it.
pub const CONTRACT_HINT: &str =
    "once every running instance has the new code, run `cargo migrate up --contract` (Migrator::contract(true))";

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
        self.steps.is_empty() && self.adopted.is_empty()
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
        if !self.adopted.is_empty() {
            writeln!(
                f,
                "took over {} migration{} from the previous tool's history (recorded, not run)",
                self.adopted.len(),
                if self.adopted.len() == 1 { "" } else { "s" }
            )?;
        }
        if self.steps.is_empty() && self.held.is_none() {
            return writeln!(f, "nothing to do: the database is up to date");
        }
        for s in &self.steps {
            let verb = match s.direction {
                Direction::Up => "applied",
                Direction::Down => "rolled back",
            };
            writeln!(f, "{verb} {} {} ({} ms)", s.version, s.name, s.duration.as_millis())?;
        }
        if let Some(held) = &self.held {
            let of = held.contract_of.map(|v| format!(" of {v}")).unwrap_or_default();
            writeln!(
                f,
                "held {} {}: a contract{of}, not applied ({CONTRACT_HINT})",
                held.version, held.name
            )?;
        }
        Ok(())
    }
}

/// Where one migration stands in a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum State {
    /// Applied, and the file is the one that was applied.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the file (or its name) has changed since.
    Modified,
    /// Not applied yet: a contract migration (`-- migrate:phase contract`),
    /// which [`Migrator::apply`](crate::Migrator::apply) holds until
    /// [`Migrator::contract`](crate::Migrator::contract) is set.
    Held,
}

impl State {
    /// The state in one lowercase word: `applied`, `pending`, `modified`,
    /// `held`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(migrate_runtime::State::Pending.as_str(), "pending");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Pending => "pending",
            Self::Modified => "modified",
            Self::Held => "held",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One migration of the code and its state in a database.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Entry<'m> {
    /// The migration.
    pub migration: &'m Migration,
    /// Its state.
    pub state: State,
    /// Its tracking row, when applied.
    pub applied: Option<Applied>,
}

/// Every migration's state in a database, from
/// [`Migrator::status`](crate::Migrator::status).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Status<'m> {
    /// The migrations of the code, oldest first.
    pub entries: Vec<Entry<'m>>,
    /// Applied migrations the code does not have.
    pub unknown: Vec<Applied>,
    /// PostgreSQL: indexes left INVALID in the migrations' schemas (see
    /// [`Event::InvalidIndexes`]); always empty on SQLite.
    pub invalid_indexes: Vec<String>,
}

impl Status<'_> {
    /// The migrations not applied yet, held contracts included.
    pub fn pending(&self) -> impl Iterator<Item = &Migration> {
        self.entries
            .iter()
            .filter(|e| matches!(e.state, State::Pending | State::Held))
            .map(|e| e.migration)
    }

    /// The contract migrations not applied yet, which
    /// [`Migrator::apply`](crate::Migrator::apply) holds.
    pub fn held(&self) -> impl Iterator<Item = &Migration> {
        self.entries
            .iter()
            .filter(|e| e.state == State::Held)
            .map(|e| e.migration)
    }
}
