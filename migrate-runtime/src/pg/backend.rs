//! [`Postgres`] as a [`Backend`]: what the one apply loop asks of a
//! database.

use super::*;

impl<C: PgClient> Backend for Postgres<'_, C> {
    /// The row of [`summary_sql`](Postgres::summary_sql), as text.
    type Summary = Vec<Option<String>>;

    async fn begin(&mut self, migrator: &Migrator<'_>, waited: &mut Option<Duration>) -> Result<()> {
        let start = Instant::now();
        let timeout = migrator.lock_timeout;
        let mut announced = false;
        loop {
            let remaining = timeout.saturating_sub(start.elapsed());
            let leased = self.lock_once(migrator, remaining, waited, &mut announced).await?;
            if !leased {
                return Ok(());
            }
            // Lock::Table: another live session runs a no-transaction
            // script under the lease; wait for it to clear.
            self.rollback().await?;
            if start.elapsed() >= timeout {
                return Err(Error::Locked {
                    waited: start.elapsed(),
                });
            }
            let pause = Duration::from_millis(50).min(remaining);
            self.client.sleep(pause).await;
            *waited = Some(waited.unwrap_or_default() + pause);
        }
    }

    async fn commit(&mut self) -> Result<()> {
        self.recorded = false;
        if !std::mem::take(&mut self.in_transaction) {
            return Ok(());
        }
        self.client.batch_execute("COMMIT").await.map_err(pg("committing"))
    }

    async fn rollback(&mut self) -> Result<()> {
        // What the transaction recorded is undone: read the history again.
        self.summary = None;
        self.recorded = false;
        if !std::mem::take(&mut self.in_transaction) {
            return Ok(());
        }
        match self.client.batch_execute("ROLLBACK").await {
            // A lost connection has no transaction left to roll back.
            Err(e) if self.client.is_closed() || e.lost() => Ok(()),
            other => other.map_err(pg("rolling back")),
        }
    }

    async fn create_table(&mut self, _migrator: &Migrator<'_>) -> Result<()> {
        let sql = format!(
            "{}CREATE TABLE IF NOT EXISTS {} (\n    \
             version bigint PRIMARY KEY,\n    \
             name text NOT NULL,\n    \
             checksum text NOT NULL,\n    \
             applied_at timestamptz NOT NULL,\n    \
             duration_ms bigint NOT NULL,\n    \
             history_digest bytea\n)",
            self.create_schema_sql(),
            self.table
        ) + &self.down_column_sql();
        self.client
            .batch_execute(&sql)
            .await
            .map_err(pg(format!("creating the tracking table {}", self.table)))?;
        self.tracked = true;
        Ok(())
    }

    async fn summary(&mut self, _migrator: &Migrator<'_>) -> Result<Option<Self::Summary>> {
        // Read with the lock and with each recorded migration: no round
        // trip here.
        Ok(self.summary.clone())
    }

    async fn read(&mut self, migrator: &Migrator<'_>) -> Result<Vec<Applied>> {
        let sql = format!(
            "SELECT version, name, checksum, \
             to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), duration_ms \
             FROM {} ORDER BY version",
            self.table
        );
        // The first read also looks for INVALID indexes, in the same round
        // trip. At an apply's start-up it first asks whether the newest
        // row's digest says the history is exactly the code's: then no row
        // is read, and no index is looked for (a failed migration leaves no
        // digest, so the start-up after one still looks; `status` always
        // looks).
        let first = !self.in_transaction;
        if first && std::mem::take(&mut self.try_exact) && self.probe_exact(migrator).await? {
            return Ok(Vec::new());
        }
        let mut statements = vec![sql];
        if first {
            statements.push(self.invalid_indexes_sql());
        }
        let result = self.query_sets(&statements.join(";\n")).await;
        let rows = match result {
            Ok(mut sets) => {
                if let Some(found) = sets.get_mut(1).filter(|_| first) {
                    self.invalid = found.drain(..).filter_map(|r| r.into_iter().next().flatten()).collect();
                }
                sets.into_iter().next().unwrap_or_default()
            }
            Err(e)
                if !self.in_transaction
                    && matches!(
                        state(&e),
                        Some(sqlstate::UNDEFINED_TABLE | sqlstate::INVALID_SCHEMA_NAME)
                    ) =>
            {
                return Ok(Vec::new());
            }
            Err(e) if e.code() == Some("42703") => {
                return Err(Error::TrackingTable {
                    table: migrator.table.name.clone(),
                    message: message_of_any(&e),
                });
            }
            Err(e) => return Err(pg(format!("reading the tracking table {}", self.table))(e)),
        };
        let shape = |message: String| Error::TrackingTable {
            table: migrator.table.name.clone(),
            message,
        };
        rows.into_iter()
            .map(|row| {
                let [
                    Some(version),
                    Some(name),
                    Some(checksum),
                    Some(applied_at),
                    Some(duration),
                ] = <[Option<String>; 5]>::try_from(row).map_err(|_| shape("a row has the wrong columns".into()))?
                else {
                    return Err(shape("a row has a NULL".into()));
                };
                let version = version
                    .parse::<u64>()
                    .ok()
                    .filter(|&v| v > 0)
                    .ok_or_else(|| shape(format!("a row has version {version}, but versions start at 1")))?;
                Ok(Applied {
                    version,
                    name,
                    checksum,
                    applied_at,
                    duration_ms: duration.parse().unwrap_or(0),
                })
            })
            .collect()
    }

    async fn check_drift(&mut self, migrator: &Migrator<'_>, history: &[Applied]) -> Result<()> {
        self.check_schema(migrator, history, false).await
    }

    async fn adopt(&mut self, migrator: &Migrator<'_>, history: &[Applied]) -> Result<Vec<u64>> {
        self.adopt_locked(migrator, history).await
    }

    async fn run_in_transaction(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
    ) -> Result<()> {
        let _capture = notice::Capture::start(self.notices.as_ref());
        self.run_whole(migrator, m, direction, script).await
    }

    fn notices(&mut self) -> Vec<Notice> {
        notice::take(self.notices.as_ref())
    }

    async fn run_outside_transaction(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
        waited: &mut Option<Duration>,
    ) -> Result<()> {
        let _capture = notice::Capture::start(self.notices.as_ref());
        if self.lock == Lock::Table {
            return self.run_under_lease(migrator, m, direction, script, waited).await;
        }
        let key = self.key(migrator).await?;
        // Taken at once: this session holds the transaction-level lock.
        self.query(&format!("SELECT pg_advisory_lock({key})"))
            .await
            .map_err(pg("taking the session's migration lock"))?;
        let ran = match self.commit().await {
            Ok(()) => match self.run_each(migrator, m, direction, script).await {
                Ok(()) => self.begin(migrator, waited).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let unlocked = self
            .query(&format!("SELECT pg_advisory_unlock({key})"))
            .await
            .map(drop)
            .map_err(pg("releasing the session's migration lock"));
        ran.and(unlocked)
    }

    async fn record(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        duration: Duration,
    ) -> Result<()> {
        // Recorded with the script, in its round trip.
        if std::mem::take(&mut self.recorded) {
            return Ok(());
        }
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX).to_string();
        let sql = self.record_tail(migrator, m, direction, &millis, false);
        let mut sets = self.query_sets(&sql).await.map_err(pg(format!(
            "recording migration {} in {}",
            m.version(),
            self.table
        )))?;
        self.keep_recorded_summary(migrator, &mut sets);
        Ok(())
    }
}
