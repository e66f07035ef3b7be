//! The locked apply loop, and the one function that runs a planned step:
//! the production loop and the build-time replay ([`Migrator::validate`])
//! both go through [`Migrator::step`]. Both are written against the
//! [`Backend`] seam, so every database runs migrations the same way.

use std::time::{Duration, Instant};

#[cfg(feature = "rusqlite")]
use rusqlite::Connection;

use crate::backend::Backend;
use crate::plan::{Planned, irreversible};
#[cfg(feature = "rusqlite")]
use crate::session::{Session, Sqlite};
use crate::{Error, Event, Migrator, Report, Result, Script, Step};

impl<'m> Migrator<'m> {
    #[cfg(feature = "rusqlite")]
    pub(crate) fn run(&self, conn: &mut Connection, target: Option<u64>) -> Result<Report> {
        if !self.allow_downgrade {
            return self.run_plain(conn, target);
        }
        self.check_set()?;
        self.check_sqlite()?;
        if !conn.is_autocommit() {
            return Err(Error::InTransaction);
        }
        let report = self.downgrade(conn)?;
        Ok(report.then(self.run_plain(conn, target)?))
    }

    /// [`run`](Self::run) without the downgrade.
    #[cfg(feature = "rusqlite")]
    pub(crate) fn run_plain(&self, conn: &mut Connection, target: Option<u64>) -> Result<Report> {
        self.check_set()?;
        self.check_sqlite()?;
        if !conn.is_autocommit() {
            return Err(Error::InTransaction);
        }
        // Fast path, without the write lock: most starts have nothing to do,
        // and the whole history is verified in one allocation-free pass.
        if target.is_none() {
            // One row (the newest, with the history's digest), else every row.
            let digest = self.code_digest();
            let (matched, cookie_now) = self.read_digest_and_cookie(conn, &digest);
            if let Some(verified_cookie) = matched {
                // The schema is the one verified with the newest migration
                // while SQLite's schema cookie is the one stamped then.
                if self.drift_applies() && verified_cookie.is_none_or(|cookie| cookie_now != Some(cookie)) {
                    self.check_drift_all_applied(conn)?;
                }
                return Ok(Report::default());
            }
            if self.table.matches_exactly(conn, self.migrations) {
                self.check_drift_all_applied(conn)?;
                return Ok(Report::default());
            }
        }
        let history = self.table.read(conn)?;
        if !self.needs_lock(&history, target)? {
            return self.idle_report(&history, target);
        }
        let session = Session::start(conn, self.lock_timeout)?;
        let mut report = Report::default();
        let result = crate::ready::now(self.run_locked(&mut Sqlite::new(&session), target, &mut report));
        let restored = session.end();
        result.and(restored).map(|()| report)
    }

    /// The start-up's reads, in one read transaction: whether the newest
    /// tracking row holds this history's digest (and the schema cookie
    /// stamped with it; see
    /// [`digest_matches`](crate::history::Table::digest_matches)), and
    /// SQLite's schema cookie now. `PRAGMA schema_version` goes first, after a deferred
    /// `BEGIN`: it opens the read transaction without loading the schema,
    /// so that a new connection loads its schema (in the digest read's
    /// preparation) inside that transaction too. Otherwise SQLite opens
    /// and ends a read transaction for each of the three, and each costs
    /// its lock, hot-journal and change-counter system calls (8 `fcntl`,
    /// `stat` and `pread` calls, strace), which callgrind does not count
    /// but a start-up of 100 migrations pays in time (2 % to 3 % of it).
    /// Leaves no transaction open; `conn` is in autocommit mode.
    #[cfg(feature = "rusqlite")]
    fn read_digest_and_cookie(&self, conn: &Connection, digest: &[u8; 16]) -> (Option<Option<i64>>, Option<i64>) {
        let began = conn.execute_batch("BEGIN DEFERRED").is_ok();
        let cookie = crate::history::schema_cookie(conn);
        let matched = self.table.digest_matches(conn, self.migrations, digest);
        if began && !conn.is_autocommit() && conn.execute_batch("COMMIT").is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        (matched, cookie)
    }

    /// Plans from the history read without the lock: `false` when there is
    /// nothing to do; refuses what the history refuses, and a grouped run
    /// with a script that cannot run in a transaction.
    pub(crate) fn needs_lock(&self, history: &[crate::Applied], target: Option<u64>) -> Result<bool> {
        let plan = self.plan(history, target)?;
        if self.grouped
            && let Some(p) = plan.iter().find(|p| p.script().is_some_and(Script::no_transaction))
        {
            return Err(Error::NoTransactionInGroup {
                version: p.migration.version(),
                name: p.migration.name().to_owned(),
                file: p.script().map(|s| s.file().to_owned()).unwrap_or_default(),
            });
        }
        Ok(!plan.is_empty())
    }

    /// Applies the plan one locked transaction at a time, re-reading the
    /// history under the lock whenever another process changed it. Leaves
    /// no transaction open, whatever happens.
    pub(crate) async fn run_locked(
        &self,
        db: &mut impl Backend,
        target: Option<u64>,
        report: &mut Report,
    ) -> Result<()> {
        let result = self.run_locked_inner(db, target, report).await;
        let ended = db.rollback().await;
        result.and(ended)
    }

    async fn run_locked_inner<B: Backend>(&self, db: &mut B, target: Option<u64>, report: &mut Report) -> Result<()> {
        let mut seen: Option<B::Summary> = None;
        let mut plan: Vec<Planned<'m>> = Vec::new();
        let mut created = false;
        let mut checked = false;
        let mut uncommitted = false;
        let mut held = None;
        loop {
            db.begin(self, &mut report.waited).await?;
            if !created {
                db.create_table(self).await?;
                created = true;
            }
            let summary = db.summary(self).await?;
            if summary.is_none() || seen != summary {
                let mut history = db.read(self).await?;
                if !checked {
                    // Another tool's history, taken over in this
                    // transaction (Migrator::adopt), then: is the schema
                    // what the applied migrations made?
                    let adopted = db.adopt(self, &history).await?;
                    if !adopted.is_empty() {
                        history = db.read(self).await?;
                        report.adopted = adopted;
                        uncommitted = true;
                    }
                    db.check_drift(self, &history).await?;
                    checked = true;
                }
                plan = self.plan(&history, target)?;
                plan.reverse(); // pop() takes the next step
                held = self.held(&history, target)?;
            }
            let Some(next) = plan.pop() else {
                self.announce_held(held, report);
                // An adoption with nothing to apply after it is committed alone.
                return if uncommitted {
                    db.commit().await
                } else {
                    db.rollback().await
                };
            };
            let steps: Vec<Planned<'m>> = if self.grouped {
                std::iter::once(next).chain(plan.drain(..).rev()).collect()
            } else {
                vec![next]
            };
            for step in steps {
                let (m, direction) = (step.migration, step.direction);
                let duration = self.step(db, step, &mut report.waited).await?;
                if !self.grouped {
                    seen = db.summary(self).await?;
                    db.commit().await?;
                    uncommitted = false;
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
                seen = db.summary(self).await?;
                db.commit().await?;
                uncommitted = false;
            }
        }
    }

    /// Runs one planned step inside the open transaction: announces it,
    /// runs its script (a `-- migrate:no-transaction` script outside the
    /// transaction, which is then begun again) and records it in the
    /// tracking table. The caller commits (or rolls back). Returns how long
    /// it took.
    ///
    /// The one step path: [`apply`](Self::apply),
    /// [`migrate_to`](Self::migrate_to) and [`validate`](Self::validate),
    /// on every backend, all run migrations through it.
    pub(crate) async fn step(
        &self,
        db: &mut impl Backend,
        step: Planned<'m>,
        waited: &mut Option<Duration>,
    ) -> Result<Duration> {
        let (m, direction) = (step.migration, step.direction);
        let start = Instant::now();
        self.notify(Event::Started {
            migration: m,
            direction,
        });
        let script = step.script().ok_or_else(|| irreversible(m))?;
        let ran = if script.no_transaction() {
            db.run_outside_transaction(self, m, direction, script, waited).await
        } else {
            db.run_in_transaction(self, m, direction, script).await
        };
        for notice in &db.notices() {
            self.notify(Event::Notice {
                migration: m,
                direction,
                notice,
            });
        }
        ran?;
        let duration = start.elapsed();
        db.record(self, m, direction, duration).await?;
        Ok(duration)
    }

    /// [`step`](Self::step) on SQLite in a transaction of its own, committed.
    #[cfg(feature = "rusqlite")]
    pub(crate) fn step_committed(&self, session: &Session<'_>, step: Planned<'m>) -> Result<Duration> {
        let mut waited = None;
        let mut db = Sqlite::new(session);
        crate::ready::now(async {
            db.begin(self, &mut waited).await?;
            let duration = self.step(&mut db, step, &mut waited).await?;
            db.commit().await?;
            Ok(duration)
        })
    }
}
