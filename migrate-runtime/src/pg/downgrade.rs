//! Downgrades on PostgreSQL ([`Migrator::store_down`],
//! [`Migrator::allow_downgrade`]): the `down_sql` column of the tracking
//! table, and the rollback of the versions this build does not know with
//! the downs stored there.

use super::*;
use crate::downgrade::COLUMN;

impl<C: PgClient> Postgres<'_, C> {
    /// With [`Migrator::store_down`]: the statement that adds the column
    /// to a tracking table made without it (run with the table's `CREATE`,
    /// in the locked transaction).
    pub(super) fn down_column_sql(&self) -> String {
        if self.store_down {
            format!(";\nALTER TABLE {} ADD COLUMN IF NOT EXISTS {COLUMN} text", self.table)
        } else {
            String::new()
        }
    }

    /// The stored down scripts of the versions above `newest` (none when
    /// the table has no such column).
    async fn stored_downs(&mut self, newest: u64) -> Result<Vec<(u64, Option<String>)>> {
        let sql = format!(
            "SELECT version, {COLUMN} FROM {} WHERE version > {} ORDER BY version",
            self.table,
            i64::try_from(newest).unwrap_or(i64::MAX)
        );
        match self.query(&sql).await {
            Ok(rows) => Ok(rows
                .into_iter()
                .filter_map(|mut r| {
                    let down = r.pop().flatten();
                    let version = r.pop().flatten()?.parse().ok()?;
                    Some((version, down))
                })
                .collect()),
            Err(e) if state(&e) == Some("42703") => Ok(Vec::new()),
            Err(e) => Err(pg(format!("reading the stored down scripts in {}", self.table))(e)),
        }
    }
}

impl Migrator<'_> {
    /// The downgrade before a run: rolls back the applied migrations above
    /// the newest known one with their stored down scripts, through the
    /// locked loop (each in its transaction with its tracking row).
    pub(super) async fn downgrade_pg(&self, client: &mut impl PgClient) -> Result<Report> {
        let mut db = Postgres::new(client, self)?;
        let history = db.read(self).await?;
        if history.last().is_none_or(|a| a.version <= self.newest()) {
            return Ok(Report::default());
        }
        let downs = db.stored_downs(self.newest()).await?;
        drop(db);
        let stored = self.stored_downs(&history, |version| {
            Ok(downs.iter().find(|(v, _)| *v == version).and_then(|(_, d)| d.clone()))
        })?;
        match stored {
            Some(stored) => {
                self.rollback_runner(&stored)
                    .run_postgres_plain(client, Some(self.newest()))
                    .await
            }
            None => Ok(Report::default()),
        }
    }
}
