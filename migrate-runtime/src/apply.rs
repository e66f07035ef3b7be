//! The locked apply loop, and the one function that runs a planned step:
//! the production loop and the build-time replay ([`Migrator::validate`])
//! both go through [`Migrator::step`].

use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::foreign_keys::step_in_tx;
use crate::plan::{Planned, irreversible};
use crate::session::{Session, Tx};
use crate::{Direction, Error, Event, Migration, Migrator, Report, Result, Script, Step};

impl<'m> Migrator<'m> {
    pub(crate) fn run(&self, conn: &mut Connection, target: Option<u64>) -> Result<Report> {
        self.check_set()?;
        if !conn.is_autocommit() {
            return Err(Error::InTransaction);
        }
        // Fast path, without the write lock: most starts have nothing to do,
        // and the whole history is verified in one allocation-free pass.
        if target.is_none() && self.table.matches_exactly(conn, self.migrations) {
            self.check_drift_all_applied(conn)?;
            return Ok(Report::default());
        }
        let history = self.table.read(conn)?;
        let plan = self.plan(&history, target)?;
        if plan.is_empty() {
            return Ok(Report::default());
        }
        if self.grouped
            && let Some(p) = plan.iter().find(|p| p.script().is_some_and(Script::no_transaction))
        {
            return Err(Error::NoTransactionInGroup {
                version: p.migration.version(),
                name: p.migration.name().to_owned(),
                file: p.script().map(|s| s.file().to_owned()).unwrap_or_default(),
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
                if seen.is_none() {
                    // Under the lock, before anything runs: is the schema
                    // what the applied migrations made?
                    self.check_drift(conn, &history)?;
                }
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
                let duration = self.step(session, &mut tx, step, &mut report.waited)?;
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

    /// Runs one planned step inside the open transaction `tx`: announces
    /// it, runs its script (with the foreign-key guard; a
    /// `-- migrate:no-transaction` script outside `tx`, which is then begun
    /// again) and records it in the tracking table. The caller commits (or
    /// rolls back). Returns how long it took.
    ///
    /// The one step path: [`apply`](Self::apply),
    /// [`migrate_to`](Self::migrate_to) and [`validate`](Self::validate)
    /// all run migrations through it.
    pub(crate) fn step<'c>(
        &self,
        session: &Session<'c>,
        tx: &mut Tx<'c>,
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
        if script.no_transaction() {
            // Outside a transaction: release the lock, run, then record.
            tx.rollback()?;
            session.run_script(m, direction, script, false)?;
            *tx = session.begin(self, waited)?;
        } else {
            step_in_tx(session, m, direction, script)?;
        }
        let duration = start.elapsed();
        self.record(session.conn, m, direction, duration)?;
        Ok(duration)
    }

    /// [`step`](Self::step) in a transaction of its own, committed.
    pub(crate) fn step_committed(&self, session: &Session<'_>, step: Planned<'m>) -> Result<Duration> {
        let mut waited = None;
        let mut tx = session.begin(self, &mut waited)?;
        let duration = self.step(session, &mut tx, step, &mut waited)?;
        tx.commit()?;
        Ok(duration)
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
}
