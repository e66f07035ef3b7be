//! Migrations recorded as applied without running them, on PostgreSQL:
//! another tool's history taken over ([`Migrator::adopt`] at start-up,
//! `cargo migrate import --database`) and a database made without one
//! (`cargo migrate baseline`). The tool's table is read (and left as it
//! is), the live schema is compared with a replay of the applied
//! migrations, and our rows are written in one transaction under the
//! migration lock, with the schema recorded for the start-up drift check.
//!
//! Where the replay runs:
//!
//! - [`Migrator::record_applied_postgres`] (the command line) replays into
//!   a [`ScratchDatabase`](super::scratch::ScratchDatabase) on a server it
//!   is given, as `cargo migrate diff` does: any migration replays there.
//! - At start-up the runtime has no server address, and the app's role
//!   may not create databases; so the replay runs in the same transaction,
//!   inside a savepoint, in a new schema put first in `search_path`, and
//!   is rolled back to the savepoint after its model is read: nothing of
//!   it is ever committed. A `-- migrate:no-transaction` migration cannot
//!   run there, and is refused with what to do instead.

use postgres::{Client, Config};

use super::client::{Message, PgClient, PgError};
use super::{Postgres, literal, message_of_any, pg};
use crate::backend::Backend as _;
use crate::history::quote;
use crate::model::{Filter, Model};
use crate::previous::History;
use crate::{Applied, DriftPolicy, Migration, Migrator, Previous, Result};

/// The schema the start-up replay runs in (inside a savepoint, never
/// committed; one run at a time holds the migration lock).
const REPLAY_SCHEMA: &str = "migrate_adopt_replay";

/// Runs `sql` as one simple query, returning the rows' text.
pub(super) async fn text_rows(
    client: &mut impl PgClient,
    sql: &str,
) -> std::result::Result<Vec<Vec<Option<String>>>, PgError> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            Message::Row(row) => Some(row),
            Message::Complete => None,
        })
        .collect())
}

impl Previous {
    /// [`applied`](Self::applied) on PostgreSQL: our versions that this
    /// tool has applied to `client`'s database, read from its tracking
    /// table in the connection's `search_path`. Changes nothing.
    ///
    /// # Errors
    ///
    /// As [`applied`](Self::applied); [`Error::Adopt`](crate::Error::Adopt) for
    /// rusqlite_migration, which keeps its history in SQLite's `PRAGMA
    /// user_version`; [`Error::Postgres`](crate::Error::Postgres) when the table cannot be read.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use migrate_runtime::{Previous, postgres::{Client, NoTls}};
    /// let mut client = Client::connect("postgres://app@localhost/app", NoTls)?;
    /// let imported = [("20240101120000", 1), ("20240102120000", 2)];
    /// let applied = Previous::Sqlx.applied_postgres(&mut client, &imported)?;
    /// println!("sqlx applied {applied:?}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn applied_postgres<S: AsRef<str>>(
        self,
        client: &mut Client,
        imported: &[(S, u64)],
    ) -> Result<Option<Vec<u64>>> {
        match crate::ready::now(self.read_pg(client))? {
            None => Ok(None),
            Some(history) => self.resolve(&history, imported).map(Some),
        }
    }

    /// Reads the tool's history from its table; `None` when it left none.
    pub(crate) async fn read_pg(self, client: &mut impl PgClient) -> Result<Option<History>> {
        let Some(table) = self.table() else {
            return Err(self.error(
                "rusqlite_migration keeps its history in SQLite's PRAGMA user_version, which a PostgreSQL database does not have; is the tool right?",
            ));
        };
        let sql = format!(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass({}) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            literal(table)
        );
        let columns: Vec<String> = text_rows(client, &sql)
            .await
            .map_err(pg(format!("reading the columns of `{table}`")))?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        if columns.is_empty() {
            return Ok(None);
        }
        let rows = text_rows(client, self.history_sql(&columns)?)
            .await
            .map_err(pg(format!("reading `{table}`")))?;
        self.interpret(rows)
    }
}

impl Migrator<'_> {
    /// [`record_applied`](Self::record_applied) on PostgreSQL: records the
    /// migrations numbered `versions` as applied without running them, in
    /// one transaction under the migration lock, after the same checks;
    /// the expected schema is replayed into a scratch database on the
    /// server `server` points at (its role needs `CREATEDB`), as
    /// [`schema_diff_postgres`](Self::schema_diff_postgres) does. The
    /// schema is recorded with the newest row, for the start-up drift
    /// check.
    ///
    /// # Errors
    ///
    /// As [`record_applied`](Self::record_applied), and [`Error::Postgres`](crate::Error::Postgres)
    /// when the scratch database cannot be made; nothing is recorded.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use migrate_runtime::{Migration, Migrator, Script, postgres::{Client, Config, NoTls}};
    /// let migrations = [Migration::new(1, "t", Script::new("CREATE TABLE t (x int);", "0001_t.sql"))];
    /// let url = "postgres://app@localhost/app";
    /// let mut client = Client::connect(url, NoTls)?;
    /// let recorded = Migrator::new(&migrations).record_applied_postgres(&mut client, &url.parse::<Config>()?, &[1])?;
    /// assert_eq!(recorded, [1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record_applied_postgres(&self, client: &mut Client, server: &Config, versions: &[u64]) -> Result<Vec<u64>> {
        self.check_set()?;
        crate::ready::now(async {
            let mut db = Postgres::new(client, self)?;
            let result = match db.enter().await {
                Ok(()) => db.record_locked(self, server, versions).await,
                Err(e) => Err(e),
            };
            let ended = db.leave().await;
            let recorded = result?;
            ended.map(|()| recorded)
        })
    }
}

impl<C: PgClient> Postgres<'_, C> {
    /// [`Migrator::record_applied_postgres`] after `enter`: locks, checks,
    /// records, commits.
    async fn record_locked(&mut self, migrator: &Migrator<'_>, server: &Config, versions: &[u64]) -> Result<Vec<u64>> {
        let mut waited = None;
        self.begin(migrator, &mut waited).await?;
        let result = async {
            self.create_table(migrator).await?;
            let history = self.read(migrator).await?;
            let to_record = migrator.recordable(&history, versions)?;
            let filter = migrator.filter()?;
            let expected = if migrator.drift == DriftPolicy::Off || to_record.is_empty() {
                None
            } else {
                let all = with_history(&history, &to_record);
                let mut scratch = migrator.replay_postgres(server, &all)?;
                Some((
                    Model::read_postgres(scratch.client(), migrator.schema.as_deref(), &filter)?,
                    all.last().copied(),
                ))
            };
            self.record_checked(migrator, &filter, &to_record, expected).await?;
            self.commit().await?;
            Ok(to_record.iter().map(|m| m.version()).collect())
        }
        .await;
        if result.is_err() {
            let _ = self.rollback().await;
        }
        result
    }

    /// [`Migrator::adopt`] at start-up, under the lock in the open
    /// transaction: when our history is empty, records what the previous
    /// tool applied, after comparing the schema with a replay in a
    /// savepoint. Returns the versions recorded.
    pub(super) async fn adopt_locked(&mut self, migrator: &Migrator<'_>, history: &[Applied]) -> Result<Vec<u64>> {
        let Some(previous) = migrator.previous else {
            return Ok(Vec::new());
        };
        if !history.is_empty() {
            return Ok(Vec::new());
        }
        let Some(found) = previous.read_pg(self.client).await? else {
            return Ok(Vec::new());
        };
        if migrator.imported.is_empty() {
            return Err(previous.no_mapping());
        }
        let versions = previous.resolve(&found, migrator.imported)?;
        let to_record = migrator.recordable(history, &versions)?;
        let filter = migrator.filter()?;
        let expected = if migrator.drift == DriftPolicy::Off || to_record.is_empty() {
            None
        } else {
            let all = with_history(history, &to_record);
            Some((
                self.replay_in_savepoint(migrator, previous, &all, &filter).await?,
                all.last().copied(),
            ))
        };
        self.record_checked(migrator, &filter, &to_record, expected).await?;
        Ok(versions)
    }

    /// The schema the migrations numbered `versions` make, replayed in
    /// this transaction inside a savepoint, in [`REPLAY_SCHEMA`], then
    /// rolled back.
    async fn replay_in_savepoint(
        &mut self,
        migrator: &Migrator<'_>,
        previous: Previous,
        versions: &[u64],
        filter: &Filter,
    ) -> Result<Model> {
        let subset = migrator.subset(versions)?;
        let instead = format!(
            "take the history over once with `cargo migrate import --from {} --database URL` (it replays in a scratch database), then start the app",
            previous.name()
        );
        if let Some(m) = subset.iter().find(|m| m.up().no_transaction()) {
            return Err(previous.error(format!(
                "migration {} `{}` ({}) is `-- migrate:no-transaction`, and the start-up check replays the migrations inside its transaction, where it cannot run; {instead}",
                m.version(),
                m.name(),
                m.up().file()
            )));
        }
        let schema = quote(REPLAY_SCHEMA);
        self.client
            .batch_execute(&format!(
                "SAVEPOINT migrate_adopt; CREATE SCHEMA {schema}; SET LOCAL search_path TO {schema}"
            ))
            .await
            .map_err(pg("starting the replay of the adopted migrations"))?;
        let mut replayed = Ok(());
        for m in &subset {
            if let Err(e) = self.client.batch_execute(m.up().sql()).await {
                replayed = Err(previous.error(format!(
                    "replaying migration {} `{}` ({}) in a scratch schema, to check the schema, failed: {}; {instead}",
                    m.version(),
                    m.name(),
                    m.up().file(),
                    message_of_any(&e)
                )));
                break;
            }
        }
        let model = match replayed {
            Ok(()) => Model::read_pg(self.client, Some(REPLAY_SCHEMA), filter).await,
            Err(e) => Err(e),
        };
        let undone = self
            .client
            .batch_execute("ROLLBACK TO SAVEPOINT migrate_adopt; RELEASE SAVEPOINT migrate_adopt")
            .await
            .map_err(pg("rolling the replay of the adopted migrations back"));
        let model = model?;
        undone.map(|()| model)
    }

    /// Compares the live schema with `expected` (the schema after the
    /// given version) as the drift policy says, then inserts `to_record`'s
    /// rows ([`Applied::RECORDED`], or [`Applied::FORCED`] when the
    /// schema differed and [`DriftPolicy::Warn`] let it through) and
    /// records the schema, in the open transaction.
    async fn record_checked(
        &mut self,
        migrator: &Migrator<'_>,
        filter: &Filter,
        to_record: &[&Migration],
        expected: Option<(Model, Option<u64>)>,
    ) -> Result<()> {
        if to_record.is_empty() {
            return Ok(());
        }
        let mut forced = false;
        if let Some((expected, version)) = expected {
            let actual = Model::read_pg(self.client, migrator.schema.as_deref(), filter).await?;
            let differences = expected.diff(&actual);
            if !differences.is_empty() {
                migrator.drifted(version, &differences)?;
                forced = true;
            }
        }
        let duration = if forced { Applied::FORCED } else { Applied::RECORDED };
        let sql: String = to_record
            .iter()
            .map(|m| {
                format!(
                    "INSERT INTO {} (version, name, checksum, applied_at, duration_ms) \
                     VALUES ({}, {}, '{}', clock_timestamp(), {duration});\n",
                    self.table,
                    m.version_i64(),
                    literal(m.name()),
                    m.checksum()
                )
            })
            .collect();
        self.client
            .batch_execute(&sql)
            .await
            .map_err(pg(format!("recording the migrations in {}", self.table)))?;
        if migrator.drift != DriftPolicy::Off {
            self.write_schema(migrator).await?;
        }
        Ok(())
    }
}

/// The versions of `history` and `to_record`, oldest first.
fn with_history(history: &[Applied], to_record: &[&Migration]) -> Vec<u64> {
    let mut all: Vec<u64> = history.iter().map(|a| a.version).collect();
    all.extend(to_record.iter().map(|m| m.version()));
    all.sort_unstable();
    all
}
