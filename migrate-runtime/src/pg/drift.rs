//! Drift on PostgreSQL: the schema a database's applied migrations make
//! (replayed into a [`ScratchDatabase`] on the same server) against the
//! one it has; and the start-up check.
//!
//! The start-up check cannot replay (an app's role may not create
//! databases, and a replay per start would cost seconds), and the build
//! cannot compute a PostgreSQL schema without a server. So the runtime
//! keeps the schema itself: after a run that applied or rolled back
//! migrations, it reads the schema the migrations just made from the
//! catalog and stores it (the model as text,
//! [`Model::to_record`]) in the newest tracking row's `schema_model`
//! column, which it adds to tracking tables that lack it. At each start it
//! reads the live schema and compares; a difference is drift, listed as
//! `cargo migrate diff` lists it. A database migrated before this column
//! existed is checked from its next migration on; `cargo migrate diff`
//! compares it by replay at any time.

use postgres::{Client, Config};

use super::scratch::ScratchDatabase;
use super::{Postgres, pg};
use crate::drift::replayable;
use crate::model::{Filter, Model};
use crate::plan::{find, matches};
use crate::{Applied, DriftPolicy, Error, Event, Migration, Migrator, Result, SchemaDiff};

/// The tracking table's column that holds the schema after the newest
/// migration.
const COLUMN: &str = "schema_model";

impl Migrator<'_> {
    /// A new [`ScratchDatabase`] on the server `server` points at, holding
    /// what the migrations numbered `versions` make, applied through this
    /// runner (in [`schema`](Self::schema) when one is set), named
    /// `migrate_replay_…`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownTarget`] for a version the code does not have;
    /// [`Error::Postgres`] when the scratch database cannot be made; the
    /// migrations' errors.
    pub fn replay_postgres(&self, server: &Config, versions: &[u64]) -> Result<ScratchDatabase> {
        let mut subset: Vec<Migration> = Vec::with_capacity(versions.len());
        for &v in versions {
            let m = find(self.migrations(), v).ok_or_else(|| Error::UnknownTarget {
                target: v,
                known: self.migrations().iter().map(Migration::version).collect(),
            })?;
            subset.push(m.clone());
        }
        subset.sort_by_key(Migration::version);
        let mut scratch = ScratchDatabase::create(server, "migrate_replay_")?;
        let mut replay = Migrator::new(&subset)
            .table(self.table_name())
            .allow_out_of_order(true)
            .drift(DriftPolicy::Off)
            .lock(self.lock);
        if let Some(schema) = &self.schema {
            replay = replay.schema(schema);
        }
        replay.apply_postgres(scratch.client())?;
        Ok(scratch)
    }

    /// [`schema_diff`](Self::schema_diff) on PostgreSQL: compares
    /// `client`'s schema with the one its applied migrations make,
    /// replayed into a scratch database on the server `server` points at
    /// (usually the same server: `client`'s URL). Changes nothing in
    /// `client`'s database.
    ///
    /// # Errors
    ///
    /// As [`schema_diff`](Self::schema_diff), and [`Error::Postgres`] when
    /// a scratch database cannot be made.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use migrate_runtime::{Migrator, postgres::{Client, Config, NoTls}};
    /// # let migrations = [];
    /// let url = "postgres://app@localhost/app";
    /// let mut client = Client::connect(url, NoTls)?;
    /// let migrator = Migrator::new(&migrations);
    /// let diff = migrator.schema_diff_postgres(&mut client, &url.parse::<Config>()?, &migrator.filter()?)?;
    /// for d in &diff.differences {
    ///     println!("{d}");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schema_diff_postgres(&self, client: &mut Client, server: &Config, filter: &Filter) -> Result<SchemaDiff> {
        let status = self.status_postgres(client)?;
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&self.qualified_table()])
            .map_err(pg("looking for the tracking table"))?
            .get(0);
        if !exists {
            return Err(Error::NotMigrated {
                table: self.table_name().to_owned(),
            });
        }
        let versions = replayable(&status)?;
        let mut scratch = self.replay_postgres(server, &versions)?;
        let expected = Model::read_postgres(scratch.client(), self.schema.as_deref(), filter)?;
        drop(scratch);
        let actual = Model::read_postgres(client, self.schema.as_deref(), filter)?;
        let differences = expected.diff(&actual);
        Ok(SchemaDiff {
            version: versions.last().copied(),
            expected,
            actual,
            differences,
        })
    }

    /// `"schema"."table"`, or `"table"`.
    fn qualified_table(&self) -> String {
        let table = crate::history::quote(self.table_name());
        match &self.schema {
            Some(s) => format!("{}.{table}", crate::history::quote(s)),
            None => table,
        }
    }
}

impl Postgres<'_> {
    /// The schema recorded with the newest applied migration: its version
    /// and the model, when there is one (`to_jsonb` of the row, so a
    /// tracking table without the column reads as none, without an error
    /// that would end a transaction).
    fn recorded(&mut self) -> Result<Option<(u64, Option<String>)>> {
        let sql = format!(
            "SELECT version, to_jsonb(m) ->> '{COLUMN}' FROM {} AS m ORDER BY version DESC LIMIT 1",
            self.table
        );
        let rows = self
            .client
            .query(&sql, &[])
            .map_err(pg("reading the recorded schema"))?;
        Ok(rows.first().map(|r| {
            let version: i64 = r.get(0);
            (u64::try_from(version).unwrap_or(0), r.get(1))
        }))
    }

    /// The start-up drift check: when every applied migration in
    /// `history` is one of ours, unmodified, and the newest has a recorded
    /// schema, compares the live schema with it, as the migrator's policy
    /// says. Outside the lock, a migration committed by another process
    /// between the reads is not drift: the record is read again after the
    /// live schema, and a change skips the check.
    pub(super) fn check_schema(&mut self, migrator: &Migrator<'_>, history: &[Applied]) -> Result<()> {
        if migrator.drift == DriftPolicy::Off {
            return Ok(());
        }
        let Some(newest) = history.last() else {
            return Ok(());
        };
        if !history
            .iter()
            .all(|a| find(migrator.migrations, a.version).is_some_and(|m| matches(m, a)))
        {
            return Ok(());
        }
        let Some((version, Some(text))) = self.recorded()? else {
            return Ok(());
        };
        if version != newest.version {
            return Ok(());
        }
        let Some(expected) = Model::from_record(&text) else {
            return Ok(()); // another version's format: checked after the next migration
        };
        let filter = migrator.filter()?;
        let actual = Model::read_postgres(self.client, migrator.schema.as_deref(), &filter)?;
        let differences = expected.diff(&actual);
        if differences.is_empty() || self.recorded()? != Some((version, Some(text))) {
            return Ok(());
        }
        match migrator.drift {
            DriftPolicy::Warn => {
                migrator.notify(Event::Drift {
                    differences: &differences,
                });
                Ok(())
            }
            _ => Err(Error::Drift {
                version: Some(version),
                differences: differences.iter().map(ToString::to_string).collect(),
            }),
        }
    }

    /// After a run that changed the history: stores the live schema with
    /// the newest applied migration, under the migration lock, adding the
    /// column to a tracking table that lacks it.
    pub(super) fn record_schema(
        &mut self,
        migrator: &Migrator<'_>,
        waited: &mut Option<std::time::Duration>,
    ) -> Result<()> {
        use crate::backend::Backend as _;
        self.begin(migrator, waited)?;
        let recorded = (|| {
            let filter = migrator.filter()?;
            let model = Model::read_postgres(self.client, migrator.schema.as_deref(), &filter)?;
            let table = &self.table;
            self.client
                .batch_execute(&format!("ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {COLUMN} text"))
                .and_then(|()| {
                    self.client.execute(
                        &format!("UPDATE {table} SET {COLUMN} = $1 WHERE version = (SELECT max(version) FROM {table})"),
                        &[&model.to_record()],
                    )
                })
                .map(drop)
                .map_err(pg(format!("recording the schema in {table}")))
        })();
        match recorded {
            Ok(()) => self.commit(),
            Err(e) => {
                let _ = self.rollback();
                Err(e)
            }
        }
    }
}
