//! [`Postgres`] as [`Batches`]: a batched backfill walks the table's
//! integer primary key in ranges, one transaction per batch, under the
//! session's migration lock (held from before the first batch to the
//! transaction that records the migration, as for any no-transaction
//! script), so another migrator waits for the whole backfill while the
//! app's own writes only ever wait for the rows of the batch running.

use super::*;
use crate::backfill::{Backfill, Batch, Batches, Start, progress_table, unwalkable};

/// The key types a backfill walks: PostgreSQL's integers.
const INTEGER_TYPES: [&str; 3] = ["smallint", "integer", "bigint"];

/// The hint for a table without a single-column integer primary key.
const NO_KEY: &str = "a batched backfill walks the table's primary key in ranges: give the table a single-column smallint, integer or bigint primary key, or run this UPDATE without `-- migrate:batch` (in one transaction)";

/// A key as SQL, `bigint` (the smallest when there is none yet): a bare
/// `-9223372036854775808` would be a `numeric`, which no integer index
/// serves.
fn bigint(key: Option<String>) -> String {
    let key = key.and_then(|k| k.parse::<i64>().ok()).unwrap_or(i64::MIN);
    format!("'{key}'::bigint")
}

fn count(text: Option<&Option<String>>) -> u64 {
    text.and_then(Option::as_deref)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

impl<C: PgClient> Postgres<'_, C> {
    /// The progress table, `{tracking}_backfill`, in the tracking table's schema.
    fn progress_table(&self, migrator: &Migrator<'_>) -> String {
        let prefix = self
            .schema
            .as_deref()
            .map(|s| format!("{}.", quote(s)))
            .unwrap_or_default();
        format!("{prefix}{}", quote(&progress_table(&migrator.table.name)))
    }

    /// `CREATE TABLE IF NOT EXISTS` of the progress table.
    pub(super) fn create_progress_sql(&self, migrator: &Migrator<'_>) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {} (version bigint PRIMARY KEY, last_key bigint NOT NULL, \
             rows_walked bigint NOT NULL, rows_updated bigint NOT NULL, batches bigint NOT NULL, \
             updated_at timestamptz NOT NULL)",
            self.progress_table(migrator)
        )
    }

    /// What the tracking row of a batched migration is recorded with:
    /// its progress row deleted.
    pub(super) fn forget_progress_sql(&self, migrator: &Migrator<'_>, m: &Migration) -> String {
        format!(
            "{};\nDELETE FROM {} WHERE version = {}",
            self.create_progress_sql(migrator),
            self.progress_table(migrator),
            m.version_i64()
        )
    }

    /// A statement of the backfill failed: the error at its line.
    fn batch_error(m: &Migration, plan: &Backfill<'_>, statement: &str, e: &PgError) -> Error {
        sql_error(m, Direction::Up, m.up(), plan.line(), statement.to_owned(), e, false)
    }

    /// The rows of `sql`, or the error of the backfill's statement.
    async fn batch_rows(&mut self, m: &Migration, plan: &Backfill<'_>, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        self.query(sql).await.map_err(|e| Self::batch_error(m, plan, sql, &e))
    }

    /// One batch, in the transaction [`Batches::backfill_batch`] opened.
    async fn batch_in_transaction(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        plan: &Backfill<'_>,
        start: &Start,
        end: i64,
        size: u64,
    ) -> Result<Option<Batch>> {
        let progress = self.progress_table(migrator);
        let version = m.version_i64();
        let rows = self
            .query(&format!("SELECT last_key FROM {progress} WHERE version = {version}"))
            .await
            .map_err(pg(format!("reading the backfill progress in {progress}")))?;
        let lo = bigint(rows.first().and_then(|r| r.first().cloned().flatten()));
        let key = &start.key;
        // Without an upper bound in the scan: with one, a table without
        // statistics (just filled) gets a bitmap scan of the whole range and
        // a sort, instead of the primary key's first `size` entries.
        let next = format!(
            "SELECT (max(k) FILTER (WHERE k <= {end}))::text, count(*) FILTER (WHERE k <= {end}) \
             FROM (SELECT {key} AS k FROM {} WHERE {key} > {lo} ORDER BY {key} LIMIT {size}) AS s",
            plan.table()
        );
        let rows = self.batch_rows(m, plan, &next).await?;
        let row = rows.first().cloned().unwrap_or_default();
        let (Some(Some(hi)), walked) = (row.first(), count(row.get(1))) else {
            return Ok(None);
        };
        let update = plan.ranged(key, &lo, hi);
        let updated = self
            .client
            .execute(&update, &[])
            .await
            .map_err(|e| Self::batch_error(m, plan, &update, &e))?;
        let record = format!(
            "INSERT INTO {progress} AS p (version, last_key, rows_walked, rows_updated, batches, updated_at) \
             VALUES ({version}, {hi}, {walked}, {updated}, 1, clock_timestamp()) \
             ON CONFLICT (version) DO UPDATE SET last_key = EXCLUDED.last_key, \
             rows_walked = p.rows_walked + EXCLUDED.rows_walked, rows_updated = p.rows_updated + EXCLUDED.rows_updated, \
             batches = p.batches + 1, updated_at = EXCLUDED.updated_at;\nCOMMIT"
        );
        self.client
            .batch_execute(&record)
            .await
            .map_err(pg(format!("recording the backfill progress in {progress}")))?;
        Ok(Some(Batch { walked, updated }))
    }
}

impl<C: PgClient> Batches for Postgres<'_, C> {
    const PAUSE: bool = false;

    async fn backfill_start(&mut self, migrator: &Migrator<'_>, m: &Migration, plan: &Backfill<'_>) -> Result<Start> {
        let progress = self.progress_table(migrator);
        let create = self.create_progress_sql(migrator);
        self.client
            .batch_execute(&create)
            .await
            .map_err(pg(format!("creating the backfill progress table {progress}")))?;
        let table = literal(plan.table());
        let keys = self
            .batch_rows(
                m,
                plan,
                &format!(
                    "SELECT to_regclass({table}) IS NOT NULL, quote_ident(a.attname), format_type(a.atttypid, NULL) \
                     FROM (SELECT 1) AS one LEFT JOIN pg_index i ON i.indrelid = to_regclass({table}) AND i.indisprimary \
                     LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
                ),
            )
            .await?;
        let exists = keys
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .is_some_and(|t| t == "t");
        if !exists {
            return Err(unwalkable(
                m,
                m.up(),
                plan,
                format!("there is no table `{}`", plan.table()),
                "create the table in an earlier migration (the backfill's table must exist when it runs)",
            ));
        }
        let columns: Vec<(String, String)> = keys
            .iter()
            .filter_map(|r| Some((r.get(1).cloned().flatten()?, r.get(2).cloned().flatten()?)))
            .collect();
        let key = match columns.as_slice() {
            [(name, kind)] if INTEGER_TYPES.contains(&kind.as_str()) => name.clone(),
            [(name, kind)] => {
                return Err(unwalkable(
                    m,
                    m.up(),
                    plan,
                    format!(
                        "the primary key of `{}` is `{name}` of type {kind}, not an integer",
                        plan.table()
                    ),
                    NO_KEY,
                ));
            }
            [] => {
                return Err(unwalkable(
                    m,
                    m.up(),
                    plan,
                    format!("`{}` has no primary key", plan.table()),
                    NO_KEY,
                ));
            }
            _ => {
                return Err(unwalkable(
                    m,
                    m.up(),
                    plan,
                    format!("the primary key of `{}` has {} columns", plan.table(), columns.len()),
                    NO_KEY,
                ));
            }
        };
        let end_sql = format!("SELECT max({key})::text FROM {}", plan.table());
        let end = self.batch_rows(m, plan, &end_sql).await?;
        let end: Option<i64> = end
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|t| t.parse().ok());
        let rows = self
            .query(&format!(
                "SELECT last_key, rows_walked, rows_updated, batches FROM {progress} WHERE version = {}",
                m.version_i64()
            ))
            .await
            .map_err(pg(format!("reading the backfill progress in {progress}")))?;
        let row = rows.first().cloned().unwrap_or_default();
        let lo = row.first().cloned().flatten().unwrap_or_else(|| i64::MIN.to_string());
        let remaining = format!(
            "SELECT count(*) FROM {} WHERE {key} > {lo} AND {key} <= {}",
            plan.table(),
            bigint(end.map(|e| e.to_string()))
        );
        let remaining = self.batch_rows(m, plan, &remaining).await?;
        Ok(Start {
            walked: count(row.get(1)),
            updated: count(row.get(2)),
            batches: count(row.get(3)),
            remaining: count(remaining.first().and_then(|r| r.first())),
            end,
            key,
        })
    }

    async fn backfill_batch(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        plan: &Backfill<'_>,
        start: &Start,
        size: u64,
    ) -> Result<Option<Batch>> {
        let Some(end) = start.end else {
            return Ok(None);
        };
        self.client
            .batch_execute("BEGIN")
            .await
            .map_err(pg("starting a transaction"))?;
        let result = self.batch_in_transaction(migrator, m, plan, start, end, size).await;
        if !matches!(result, Ok(Some(_))) {
            // Nothing left, or a failure: the transaction is not committed.
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
        result
    }

    async fn backfill_pause(&mut self, pause: Duration) {
        self.client.sleep(pause).await;
    }
}
