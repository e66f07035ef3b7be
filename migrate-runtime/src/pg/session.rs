//! [`Postgres`]'s connection work: locks, the tracking table, running
//! scripts and reporting their errors.

use super::*;

/// The tracking table's column holding the history's digest.
pub(super) const DIGEST_COLUMN: &str = "history_digest";

/// The suffix of the head table's name (`_migrations_head`): one row, the
/// digest of the history (in hex), its newest version, its number of
/// migrations and the tracking table (its OID, as `oid` and as `regclass`:
/// [`TRACKING_NAME`]), written by each run that applied a migration once the rows
/// are verified to be exactly the code's (see
/// [`stamp_history_digest`](Postgres::stamp_history_digest)), and the
/// drift check's catalog statistics. A start-up reads this row alone
/// ([`probe_exact`](Postgres::probe_exact)), not the history. What makes
/// that safe is the trigger `{table}_head_clear` on the tracking table:
/// every statement that adds, deletes, truncates or changes the version,
/// name, checksum or digest of tracking rows (by hand, by `repair`, by an
/// older release that knows nothing of the head) empties the head table in
/// its own transaction, so the next start-up reads and verifies every row;
/// a tracking table dropped (its trigger goes with it, the head stays),
/// renamed or made again is not the one the name finds now, and the head
/// is not trusted.
/// Its function runs as the table's owner (`SECURITY DEFINER`, with a
/// fixed `search_path` and qualified names): another role writing the
/// tracking table need not be granted the head table. No one else may call
/// it (`REVOKE … FROM PUBLIC`; a trigger's firing checks no privilege).
pub(super) const HEAD_SUFFIX: &str = "_head";

/// The head table's column holding the tracking table as a `regclass`
/// (its OID, which the server prints as the name it resolves by now),
/// added next to `tracking` (the same OID, as `oid`, which earlier
/// releases read): selecting it asks the server for the tracking table's
/// name by OID, with no type name to look up, no cast and no name to
/// resolve (see [`probe_exact`](Postgres::probe_exact)).
const TRACKING_NAME: &str = "tracking_name";

/// Whether `printed`, a `regclass` as the server prints it, is the relation
/// `name` without a schema: PostgreSQL's `regclassout` prints the bare name
/// (`quote_identifier`, `ruleutils.c`: bare when it is lower-case letters,
/// digits and underscores not starting with a digit, and not a keyword;
/// quoted otherwise) when the relation is the one the name finds on the
/// session's `search_path` ("visible", `RelationIsVisible` in
/// `namespace.c`), and qualifies it with its schema otherwise; a relation
/// that no longer exists prints as its OID. Both unqualified spellings are
/// accepted, so a keyword this does not know costs nothing. A quoted
/// identifier doubles each `"` inside, so a qualified name (`"a"."b"`) is
/// never the quoted form of one name.
pub(super) fn prints_as(printed: &str, name: &str) -> bool {
    let bare = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    (bare && printed == name) || printed == crate::history::quote(name)
}

/// A tracking row's `duration_ms` measured by the server: from the arrival
/// of the message that holds the script and the row, to the row.
const SERVER_MILLIS: &str = "(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::bigint";

/// The digest of the migrator's history, in hex.
fn digest_hex(migrator: &Migrator<'_>) -> String {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(32);
    for b in migrator.code_digest() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

impl<'c, C: PgClient> Postgres<'c, C> {
    pub(super) fn new(client: &'c mut C, migrator: &Migrator<'_>) -> Result<Self> {
        let schema = migrator.schema.clone();
        let prefix = schema.as_deref().map(|s| format!("{}.", quote(s))).unwrap_or_default();
        Ok(Self {
            client,
            table: format!("{prefix}{}", quote(&migrator.table.name)),
            lock_table: format!("{prefix}{}", quote(&format!("{}_lock", migrator.table.name))),
            head_table: format!("{prefix}{}", quote(&format!("{}{HEAD_SUFFIX}", migrator.table.name))),
            stats_in_head: false,
            me: String::new(),
            invalid: Vec::new(),
            try_exact: false,
            history_exact: false,
            startup_stats: None,
            table_lock: migrator.table_lock_timeout,
            schema,
            lock: migrator.lock,
            key: None,
            store_down: migrator.store_down,
            in_transaction: false,
            tracked: false,
            summary: None,
            recorded: false,
            notices: migrator.notices.clone(),
            search_path: None,
        })
    }

    /// At an apply's start-up, in one round trip: whether the history is
    /// exactly the code's, read from the head table's one row (see
    /// [`HEAD_SUFFIX`]): the digest of the code's history (see
    /// [`history_digest`](crate::history::history_digest)), the code's last
    /// version, as many migrations as the code has, and the tracking table
    /// still the one the configured name finds. With the drift
    /// check on, the same round trip reads the catalogs' statistics
    /// ([`LIVE_STATS`](super::drift::LIVE_STATS)) and those recorded with
    /// that version, kept in `startup_stats` for
    /// [`check_schema_at`](Self::check_schema_at). `false` (the caller
    /// reads the rows) when the code has no migration, the head is empty
    /// (a statement changed the history since it was written) or another
    /// history's. A database whose head table a run of this release has
    /// not made yet (an older release's, or a server where it could not be
    /// made) is asked by [`probe_rows`](Self::probe_rows) instead.
    ///
    /// Which table the name finds is asked in one of two ways. Without a
    /// configured schema, the head's [`TRACKING_NAME`] column prints the
    /// relation it recorded by its OID as the session would name it, which
    /// must be the bare name ([`prints_as`]): a table dropped prints as a
    /// number, one renamed by its new name, one another table now hides (a
    /// temporary table, a schema earlier on the `search_path`) with its
    /// schema. With a configured schema, the server would print the schema
    /// or not depending on the session's `search_path`, so the name is
    /// resolved (`'"app"."_migrations"'::regclass::oid`) and compared with
    /// the recorded OID, as a head written before [`TRACKING_NAME`] existed
    /// (or its row, by an earlier release) is also asked.
    ///
    /// Its cost is what a new session pays to open a one-row table without
    /// an index and name the tracking table: about 0.30 M instructions of
    /// the server's (0.38 M resolving the name), against 0.9 M (N = 100)
    /// and 1.8 M (N = 1,000) for reading the tracking table, and 3.3 M for
    /// the whole floor connection (measured with callgrind on PostgreSQL
    /// 15; see BENCHMARKS.md). So the statement names no function, operator
    /// or type (each costs a new session 0.03–0.15 M): the digest is text,
    /// compared by the client.
    pub(super) async fn probe_exact(&mut self, migrator: &Migrator<'_>) -> Result<bool> {
        let Some(last) = migrator.migrations.last() else {
            return Ok(false);
        };
        let (version, count) = (last.version(), migrator.migrations.len() as u64);
        let stats = migrator.drift != crate::DriftPolicy::Off;
        let (recorded, live) = if stats {
            (
                format!(", {}", super::drift::STATS_COLUMN),
                format!(";\n{}", super::drift::LIVE_STATS),
            )
        } else {
            (String::new(), String::new())
        };
        let mut by_name = self.schema.is_none();
        let sets = loop {
            // The tracking table by the name the server prints for the
            // recorded OID; or the recorded OID and the one the name
            // resolves to now: a tracking table dropped (`DROP … CASCADE`
            // takes its trigger along, not the head) fails the cast, one
            // made again by hand differs.
            let tracking = if by_name {
                TRACKING_NAME.to_owned()
            } else {
                format!("tracking, {}::regclass::oid", literal(&self.table))
            };
            let sql = format!(
                "SELECT history_digest, version, migrations, {tracking}{recorded} FROM {}{live}",
                self.head_table,
            );
            match self.query_sets(&sql).await {
                // A row an earlier release's run wrote into a head that has
                // the column leaves it empty: by the OID.
                Ok(sets)
                    if by_name
                        && sets
                            .first()
                            .and_then(|rows| rows.first())
                            .is_some_and(|row| row.get(3).is_none_or(Option::is_none)) =>
                {
                    by_name = false;
                }
                Ok(sets) => break sets,
                // No head table yet (it is made by the next run that applies a
                // migration), or one this role may not read: ask the tracking
                // table.
                Err(e)
                    if matches!(
                        super::state(&e),
                        Some(
                            super::sqlstate::UNDEFINED_TABLE
                                | super::sqlstate::INVALID_SCHEMA_NAME
                                | super::sqlstate::INSUFFICIENT_PRIVILEGE
                        )
                    ) =>
                {
                    return self.probe_rows(migrator).await;
                }
                // A head written before its `tracking_name` column (the
                // next run that applies a migration adds it): by the OID.
                Err(e) if by_name && super::state(&e) == Some(super::sqlstate::UNDEFINED_COLUMN) => {
                    by_name = false;
                }
                // A head table of another shape: read the rows.
                Err(e) if super::state(&e) == Some(super::sqlstate::UNDEFINED_COLUMN) => return Ok(false),
                Err(e) => return Err(pg(format!("reading the head table {}", self.head_table))(e)),
            }
        };
        let mut sets = sets.into_iter();
        let [row] = <[_; 1]>::try_from(sets.next().unwrap_or_default()).unwrap_or_default();
        let mut cells = row.into_iter();
        let digest = cells.next().flatten();
        let numbers: Vec<Option<u64>> = cells.by_ref().take(2).map(|n| n?.parse().ok()).collect();
        let same_table = if by_name {
            cells
                .next()
                .flatten()
                .is_some_and(|printed| prints_as(&printed, &migrator.table.name))
        } else {
            let oids: Vec<Option<u64>> = cells.by_ref().take(2).map(|n| n?.parse().ok()).collect();
            oids[0].is_some() && oids[0] == oids[1]
        };
        self.history_exact = digest.as_deref() == Some(digest_hex(migrator).as_str())
            && numbers == [Some(version), Some(count)]
            && same_table;
        if self.history_exact && stats {
            let recorded = cells.next().flatten();
            let (track, counts) = (sets.next().unwrap_or_default(), sets.next().unwrap_or_default());
            self.startup_stats = Some((recorded, super::drift::live_stats(&track, &counts)));
            self.stats_in_head = true;
        }
        Ok(self.history_exact)
    }

    /// [`probe_exact`](Self::probe_exact) on a database without the head
    /// table, in one round trip (one statement, one scan
    /// of the tracking table): whether the newest tracking row carries the
    /// digest of exactly the code's history, that row is the
    /// code's last version, and the table has as many rows as the code has
    /// migrations. With the drift check on, the same round trip reads the
    /// catalogs' statistics and those recorded with that version.
    /// `false` (the caller reads the rows) when the table or a column is
    /// not there (a table made by an older release), or the history is
    /// another.
    async fn probe_rows(&mut self, migrator: &Migrator<'_>) -> Result<bool> {
        let Some(last) = migrator.migrations.last() else {
            return Ok(false);
        };
        let (version, count) = (last.version(), migrator.migrations.len());
        let mut stats = migrator.drift != crate::DriftPolicy::Off;
        loop {
            let (recorded, live) = if stats {
                (
                    format!(
                        ", max({}) FILTER (WHERE version = {version})",
                        super::drift::STATS_COLUMN
                    ),
                    format!(";\n{}", super::drift::LIVE_STATS),
                )
            } else {
                (String::new(), String::new())
            };
            let sql = format!(
                "SELECT count(*), max(version), max(version) FILTER (WHERE {DIGEST_COLUMN} = E'\\\\x{}'::bytea){recorded} FROM {}{live}",
                digest_hex(migrator),
                self.table
            );
            let mut sets = match self.query_sets(&sql).await {
                Ok(sets) => sets.into_iter(),
                // A tracking table made before the statistics' column (a
                // run with the drift check off does not add it): ask
                // without them; made before the digest's column, or none
                // yet: read the rows (the next migration adds the columns).
                Err(e) if stats && super::state(&e) == Some(super::sqlstate::UNDEFINED_COLUMN) => {
                    stats = false;
                    continue;
                }
                Err(e)
                    if matches!(
                        super::state(&e),
                        Some(
                            super::sqlstate::UNDEFINED_COLUMN
                                | super::sqlstate::UNDEFINED_TABLE
                                | super::sqlstate::INVALID_SCHEMA_NAME
                        )
                    ) =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(pg(format!("reading the tracking table {}", self.table))(e)),
            };
            let row = sets.next().unwrap_or_default().into_iter().next().unwrap_or_default();
            let mut cells = row.into_iter();
            let numbers: Vec<Option<u64>> = cells.by_ref().take(3).map(|n| n?.parse().ok()).collect();
            self.history_exact = numbers == [Some(count as u64), Some(version), Some(version)];
            if self.history_exact && stats {
                let recorded = cells.next().flatten();
                let (track, counts) = (sets.next().unwrap_or_default(), sets.next().unwrap_or_default());
                self.startup_stats = Some((recorded, super::drift::live_stats(&track, &counts)));
            }
            return Ok(self.history_exact);
        }
    }

    /// After a run that changed the history, in its transaction and one
    /// round trip: stamps the newest row with the digest of the code's
    /// history when the rows are exactly the code's (compared on the
    /// server), and clears it otherwise; adds the column to a tracking
    /// table made by an older release. Then, in the same round trip but
    /// under a savepoint, the head table (see [`HEAD_SUFFIX`]): makes it,
    /// its [`TRACKING_NAME`] column and the trigger that empties it when
    /// missing (the column's `ALTER TABLE` only then: its lock would keep
    /// other processes' start-ups waiting until this run commits), and writes its row from
    /// the newest tracking row when that was just stamped with the code's
    /// digest (empties it otherwise). A server without PL/pgSQL or
    /// triggers, or a role that may not create them, rolls back to the
    /// savepoint: the migrations and the tracking table's digest stay, and
    /// start-ups read the tracking table, as before.
    pub(super) async fn stamp_history_digest(&mut self, migrator: &Migrator<'_>) -> Result<()> {
        let hex = digest_hex(migrator);
        let (table, head) = (&self.table, &self.head_table);
        let head_name = format!("{}{HEAD_SUFFIX}", migrator.table.name);
        let clear = format!("{head_name}_clear");
        let sql = format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {DIGEST_COLUMN} bytea;\n\
             UPDATE {table} SET {DIGEST_COLUMN} = CASE WHEN (SELECT string_agg(concat_ws(' ', version, length(name), name, checksum), E'\\n' ORDER BY version) FROM {table}) = {history} \
             THEN decode('{hex}', 'hex') END WHERE version = (SELECT max(version) FROM {table});\n\
             SAVEPOINT cargo_migrate_head;\n\
             DO $cargo_migrate$\n\
             DECLARE s name; t name;\n\
             BEGIN\n\
             SELECT n.nspname, c.relname INTO s, t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = {table_lit}::regclass;\n\
             EXECUTE format('CREATE TABLE IF NOT EXISTS %I.%I (history_digest text NOT NULL, version bigint NOT NULL, migrations bigint NOT NULL, tracking oid NOT NULL, {stats} text)', s, {head_lit});\n\
             IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = format('%I.%I', s, {head_lit})::regclass AND attname = '{TRACKING_NAME}' AND NOT attisdropped) THEN\n\
             EXECUTE format('ALTER TABLE %I.%I ADD COLUMN {TRACKING_NAME} regclass', s, {head_lit});\n\
             END IF;\n\
             IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = {table_lit}::regclass AND tgname = {clear_lit}) THEN\n\
             EXECUTE format('CREATE OR REPLACE FUNCTION %I.%I() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L', \
             s, {clear_lit}, format('BEGIN DELETE FROM %I.%I; RETURN NULL; END', s, {head_lit}));\n\
             EXECUTE format('REVOKE ALL ON FUNCTION %I.%I() FROM PUBLIC', s, {clear_lit});\n\
             EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF version, name, checksum, {DIGEST_COLUMN} ON %I.%I \
             FOR EACH STATEMENT EXECUTE FUNCTION %I.%I()', {clear_lit}, s, t, s, {clear_lit});\n\
             END IF;\n\
             END $cargo_migrate$;\n\
             DELETE FROM {head};\n\
             INSERT INTO {head} (history_digest, version, migrations, tracking, {TRACKING_NAME}) SELECT '{hex}', version, (SELECT count(*) FROM {table}), {table_lit}::regclass::oid, {table_lit}::regclass \
             FROM {table} WHERE version = (SELECT max(version) FROM {table}) AND {DIGEST_COLUMN} = decode('{hex}', 'hex');\n\
             RELEASE SAVEPOINT cargo_migrate_head",
            history = literal(&crate::history::history_text(migrator.migrations)),
            stats = super::drift::STATS_COLUMN,
            table_lit = literal(table),
            head_lit = literal(&head_name),
            clear_lit = literal(&clear),
        );
        let Err(e) = self.client.batch_execute(&sql).await else {
            return Ok(());
        };
        // Failed after the savepoint (the head's part): back to it, and
        // on. Failed before it (the tracking table's part): there is no
        // savepoint to go back to, and the first error is the one to
        // report.
        match self
            .client
            .batch_execute("ROLLBACK TO SAVEPOINT cargo_migrate_head; RELEASE SAVEPOINT cargo_migrate_head")
            .await
        {
            Ok(()) => Ok(()),
            Err(_) => Err(pg(format!("recording the history's digest in {table}"))(e)),
        }
    }

    /// The INVALID indexes in the migrations' schemas (the schema, or the
    /// connection's `search_path`).
    pub(super) fn invalid_indexes_sql(&self) -> String {
        let scope = match &self.schema {
            Some(schema) => format!("n.nspname = {}", literal(schema)),
            None => "n.nspname = ANY (current_schemas(false))".to_owned(),
        };
        format!(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE NOT i.indisvalid AND {scope} ORDER BY 1"
        )
    }

    /// Runs `sql` (several statements) as one simple query, returning the
    /// rows' text of each statement that returns rows.
    pub(super) async fn query_sets(
        &mut self,
        sql: &str,
    ) -> std::result::Result<Vec<Vec<Vec<Option<String>>>>, PgError> {
        let mut sets = Vec::new();
        let mut rows = Vec::new();
        for message in self.client.simple_query(sql).await? {
            match message {
                client::Message::Row(row) => rows.push(row),
                client::Message::Complete => sets.push(std::mem::take(&mut rows)),
            }
        }
        Ok(sets)
    }

    /// Runs `sql` as one simple query, returning the rows' text.
    pub(super) async fn query(&mut self, sql: &str) -> std::result::Result<Vec<Vec<Option<String>>>, PgError> {
        adopt::text_rows(self.client, sql).await
    }

    /// Before the locked part of a run: the schema's `search_path`, and
    /// the lock table.
    pub(super) async fn enter(&mut self) -> Result<()> {
        if let Some(schema) = self.schema.clone() {
            let rows = self
                .query("SHOW search_path")
                .await
                .map_err(pg("reading search_path"))?;
            let old = rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_default();
            let new = if old.is_empty() {
                quote(&schema)
            } else {
                format!("{}, {old}", quote(&schema))
            };
            self.query(&format!("SELECT set_config('search_path', {}, false)", literal(&new)))
                .await
                .map_err(pg(format!("setting search_path to schema `{schema}`")))?;
            self.search_path = Some(old);
        }
        if self.lock == Lock::Table {
            self.create_lock_table().await?;
            let rows = self
                .query(
                    "SELECT pg_backend_pid()::text || '/' || coalesce((SELECT backend_start::text \
                     FROM pg_stat_activity WHERE pid = pg_backend_pid()), '')",
                )
                .await
                .map_err(pg("reading the session's id"))?;
            self.me = rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_default();
        }
        Ok(())
    }

    /// After the locked part: no transaction, no session lock, the old
    /// `search_path`.
    pub(super) async fn leave(&mut self) -> Result<()> {
        let ended = self.rollback().await;
        let restored = match self.search_path.take() {
            Some(old) => self
                .query(&format!("SELECT set_config('search_path', {}, false)", literal(&old)))
                .await
                .map(drop)
                .map_err(pg("restoring search_path")),
            None => Ok(()),
        };
        ended.and(restored)
    }

    pub(super) fn create_schema_sql(&self) -> String {
        self.schema
            .as_deref()
            .map(|s| format!("CREATE SCHEMA IF NOT EXISTS {};\n", quote(s)))
            .unwrap_or_default()
    }

    /// The lock table and its one row, in autocommit. Two processes
    /// creating it at once can collide in the catalog (`IF NOT EXISTS` is
    /// not atomic), so that is retried.
    pub(super) async fn create_lock_table(&mut self) -> Result<()> {
        let sql = format!(
            "{}CREATE TABLE IF NOT EXISTS {} (id integer PRIMARY KEY, holder text, since timestamptz);\n\
             INSERT INTO {} (id) VALUES (1) ON CONFLICT (id) DO NOTHING",
            self.create_schema_sql(),
            self.lock_table,
            self.lock_table
        );
        let mut tries = 0;
        loop {
            match self.query(&sql).await {
                Ok(_) => return Ok(()),
                Err(e)
                    if tries < 5
                        && matches!(
                            state(&e),
                            Some(sqlstate::UNIQUE_VIOLATION | sqlstate::DUPLICATE_TABLE | sqlstate::DUPLICATE_SCHEMA)
                        ) =>
                {
                    tries += 1;
                }
                Err(e) => return Err(pg(format!("creating the lock table {}", self.lock_table))(e)),
            }
        }
    }

    /// The advisory-lock key: from the qualified tracking table, the
    /// schema being `current_schema()` when none is set.
    pub(super) async fn key(&mut self, migrator: &Migrator<'_>) -> Result<i64> {
        if let Some(key) = self.key {
            return Ok(key);
        }
        let schema = match &self.schema {
            Some(s) => s.clone(),
            None => {
                let rows = self
                    .query("SELECT coalesce(current_schema(), 'public')")
                    .await
                    .map_err(pg("reading current_schema()"))?;
                rows.first()
                    .and_then(|r| r.first().cloned().flatten())
                    .unwrap_or_default()
            }
        };
        let key = lock_key(&format!("{schema}.{}", migrator.table.name));
        self.key = Some(key);
        Ok(key)
    }

    /// The statement that takes the lock (`wait`: up to lock_timeout;
    /// else at once or not at all). Its row, when it got the lock: `t`,
    /// and whether the lease of [`Lock::Table`] is held by another session
    /// that still exists (`t`/`f`). No row, or `f` first: not got.
    pub(super) fn lock_sql(&self, key: i64, wait: bool) -> String {
        match (self.lock, wait) {
            (Lock::Advisory, false) => format!("SELECT pg_try_advisory_xact_lock({key}), false"),
            (Lock::Advisory, true) => {
                format!("SELECT true, false FROM (SELECT pg_advisory_xact_lock({key})) AS locked")
            }
            (Lock::Table, wait) => format!(
                "SELECT true, l.holder IS NOT NULL AND l.holder <> {me} AND EXISTS (\
                 SELECT 1 FROM pg_stat_activity a WHERE a.pid::text = split_part(l.holder, '/', 1) \
                 AND (a.backend_start IS NULL OR a.backend_start::text = split_part(l.holder, '/', 2))) \
                 FROM {table} AS l WHERE l.id = 1 FOR UPDATE OF l{skip}",
                me = literal(&self.me),
                table = self.lock_table,
                skip = if wait { "" } else { " SKIP LOCKED" },
            ),
        }
    }

    /// The statement that reads the history's summary: how many rows,
    /// the highest version and the latest `applied_at`; appended to the
    /// statement that takes the lock and to the one that records a
    /// migration, so it costs no round trip of its own.
    ///
    /// It changes whenever another process changed the history between
    /// two of this run's transactions: another process writes only under
    /// the lock, after this run's commit, so a row it inserts has an
    /// `applied_at` (`clock_timestamp()` on the server) later than every
    /// row this run saw, and rows it only deletes lower the count. (A
    /// server clock set back between two migrations could hide an insert
    /// that also deleted as many rows and kept the highest version; the
    /// cost would be a history verified at the next start instead of
    /// now.) Anything else that changes the text (a script that sets
    /// `TimeZone`) only makes the history read again.
    pub(super) fn summary_sql(&self) -> String {
        format!("SELECT count(*), max(version), max(applied_at) FROM {}", self.table)
    }

    /// Appends [`summary_sql`](Self::summary_sql) to `sql` when the
    /// tracking table is known to exist.
    pub(super) fn with_summary(&self, sql: String) -> String {
        if self.tracked {
            format!("{sql};\n{}", self.summary_sql())
        } else {
            sql
        }
    }

    /// Keeps the summary in the last of `sets` (see
    /// [`with_summary`](Self::with_summary)).
    pub(super) fn keep_summary(&mut self, sets: &mut Vec<Vec<Vec<Option<String>>>>) {
        self.summary = if self.tracked {
            sets.pop().and_then(|rows| rows.into_iter().next())
        } else {
            None
        };
    }

    /// Begins a transaction and takes the lock in it, waiting up to
    /// `timeout`, and reads the history's summary in the same round trip.
    /// Returns whether the lock table's lease is held by another live
    /// session (then the caller waits and tries again).
    pub(super) async fn lock_once(
        &mut self,
        migrator: &Migrator<'_>,
        timeout: Duration,
        waited: &mut Option<Duration>,
        announced: &mut bool,
    ) -> Result<bool> {
        self.rollback().await?;
        let key = self.key(migrator).await?;
        // One set per statement (BEGIN's is empty): the lock statement
        // returns no row when it did not get the lock.
        let first = self.with_summary(format!(
            "BEGIN;\nSELECT current_setting('lock_timeout');\n{}",
            self.lock_sql(key, false)
        ));
        self.in_transaction = true;
        let mut sets = self.query_sets(&first).await.map_err(pg("starting a transaction"))?;
        self.keep_summary(&mut sets);
        let cell = |sets: &[Vec<Vec<Option<String>>>], set: usize, col: usize| {
            sets.get(set)
                .and_then(|rows| rows.first())
                .and_then(|r| r.get(col).cloned().flatten())
        };
        let old_timeout = cell(&sets, 1, 0).unwrap_or_default();
        if cell(&sets, 2, 0).as_deref() == Some("t") {
            return Ok(cell(&sets, 2, 1).as_deref() == Some("t"));
        }
        if !std::mem::replace(announced, true) {
            migrator.notify(Event::Waiting {
                timeout: migrator.lock_timeout,
            });
        }
        let start = Instant::now();
        if self.lock == Lock::Advisory {
            // Wait by trying again between pauses, outside any transaction,
            // never blocked in pg_advisory_xact_lock: a session blocked there
            // holds a snapshot, and a CREATE INDEX CONCURRENTLY run meanwhile
            // by the holder (a no-transaction migration) waits for every
            // transaction whose snapshot is older than its own (PostgreSQL's
            // manual, CREATE INDEX, "Building Indexes Concurrently"): a
            // deadlock, which the server breaks by failing one of them and
            // leaving the index INVALID. Found by two migrators starting at
            // once on one tokio thread.
            let mut pause = Duration::from_millis(5);
            loop {
                self.rollback().await?;
                let spent = start.elapsed();
                if spent >= timeout {
                    *waited = Some(waited.unwrap_or_default() + spent);
                    return Err(Error::Locked { waited: spent });
                }
                self.client.sleep(pause.min(timeout - spent)).await;
                pause = (pause * 2).min(Duration::from_millis(100));
                self.in_transaction = true;
                let sql = self.with_summary(format!("BEGIN;\n{}", self.lock_sql(key, false)));
                let mut sets = self.query_sets(&sql).await.map_err(pg("starting a transaction"))?;
                self.keep_summary(&mut sets);
                if cell(&sets, 1, 0).as_deref() == Some("t") {
                    *waited = Some(waited.unwrap_or_default() + start.elapsed());
                    return Ok(false);
                }
            }
        }
        // lock_timeout 0 would mean "wait for ever". In a new transaction:
        // the first one read the summary without the lock, and keeps the
        // tracking table's share lock until it ends; waiting in it would
        // deadlock with a holder that alters the table (a tracking table
        // given its schema column, in `record_schema`).
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
        let wait = self.with_summary(format!(
            "ROLLBACK;\nBEGIN;\nSET LOCAL lock_timeout = {ms};\n{};\nSELECT set_config('lock_timeout', {}, true)",
            self.lock_sql(key, true),
            literal(&old_timeout)
        ));
        let result = self.query_sets(&wait).await;
        let spent = start.elapsed();
        *waited = Some(waited.unwrap_or_default() + spent);
        match result {
            Ok(mut sets) => {
                self.keep_summary(&mut sets);
                Ok(cell(&sets, 3, 1).as_deref() == Some("t"))
            }
            Err(e) if state(&e) == Some(sqlstate::LOCK_NOT_AVAILABLE) => {
                self.rollback().await?;
                Err(Error::Locked { waited: spent })
            }
            Err(e) => Err(pg("waiting for the migration lock")(e)),
        }
    }

    /// Runs `script` as one query inside the open transaction, with its
    /// tracking row ([`record_tail`](Self::record_tail)) in the same
    /// message; on failure, names the script's line, or the recording.
    pub(super) async fn run_whole(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
    ) -> Result<()> {
        // The savepoint is sent with the script (no extra round trip): when
        // the server gives no position, the script is run again from it,
        // one statement at a time, to find the failing one.
        let mut prefix = "SAVEPOINT migrate_script;\n".to_owned();
        if let Some((timeout, _)) = self.table_lock {
            prefix.push_str(&format!("SET LOCAL lock_timeout = {};\n", millis(timeout)));
        }
        let prefix_lines = prefix.matches('\n').count();
        let sql = script.sql();
        // The tracking row goes in the script's round trip too: one round
        // trip per migration fewer. After the script come a line break
        // (which ends a last line comment) and `;` (which ends a last
        // statement written without one; an empty statement otherwise).
        // The row's duration is then the server's: from the arrival of
        // the message (`statement_timestamp()`, PostgreSQL's manual,
        // "Current Date/Time") to the row.
        let tail = self.record_tail(migrator, m, direction, SERVER_MILLIS, true);
        let script_end = prefix.len() + sql.len();
        let text = format!("{prefix}{sql}\n;\n{tail}");
        let recording = format!("recording migration {} in {}", m.version(), self.table);
        let mut tries = 0;
        let e = loop {
            tries += 1;
            match self.query_sets(&text).await {
                Ok(mut sets) => {
                    self.keep_recorded_summary(migrator, &mut sets);
                    self.recorded = true;
                    return Ok(());
                }
                Err(e) => {
                    if !self.retry_lock_timeout(&e, tries).await {
                        break e;
                    }
                    self.client
                        .batch_execute("ROLLBACK TO SAVEPOINT migrate_script")
                        .await
                        .map_err(pg("rolling back to retry"))?;
                }
            }
        };
        let position = e
            .server()
            .and_then(|d| d.position)
            .map(|p| split::byte_offset(&text, p));
        let line = match position {
            Some(at) if at >= script_end => return Err(pg(recording)(e)),
            Some(at) => line_at(&text, at).saturating_sub(prefix_lines).max(1),
            // Every statement of the script ran alone: what failed was the
            // tracking row.
            None => match self.find_failing_line(sql).await {
                Some(line) => line,
                None => return Err(pg(recording)(e)),
            },
        };
        let statement = statements(sql)
            .into_iter()
            .rfind(|s| s.line <= line)
            .map(|s| s.text.to_owned())
            .unwrap_or_default();
        let mut error = sql_error(m, direction, script, line, statement, &e, true);
        self.name_lock_timeout(&mut error, &e, tries);
        Err(error)
    }

    /// Whether `e` is a lock timeout to try again after (the `tries`th
    /// try failed): then pauses first, longer each time.
    pub(super) async fn retry_lock_timeout(&mut self, e: &PgError, tries: u32) -> bool {
        let Some((_, retries)) = self.table_lock else {
            return false;
        };
        if state(e) != Some(sqlstate::LOCK_NOT_AVAILABLE) || tries > retries {
            return false;
        }
        self.client.sleep(Duration::from_millis(100) * tries.min(20)).await;
        true
    }

    /// Says, in a lock timeout's message, how long and how often it waited.
    pub(super) fn name_lock_timeout(&self, error: &mut Error, e: &PgError, tries: u32) {
        if let (Some((timeout, _)), Error::Sql { message, .. }) = (self.table_lock, error)
            && state(e) == Some(sqlstate::LOCK_NOT_AVAILABLE)
        {
            message.push_str(&format!(
                "; a lock timeout: tried {tries} {}, waiting {} ms each time (Migrator::table_lock_timeout)",
                if tries == 1 { "time" } else { "times" },
                millis(timeout)
            ));
        }
    }

    /// After a failure without a position: back to the savepoint, then one
    /// statement at a time until one fails. Its line.
    pub(super) async fn find_failing_line(&mut self, sql: &str) -> Option<usize> {
        self.client
            .batch_execute("ROLLBACK TO SAVEPOINT migrate_script")
            .await
            .ok()?;
        if let Some((timeout, _)) = self.table_lock {
            // Rolled back with the savepoint.
            let set = format!("SET LOCAL lock_timeout = {}", millis(timeout));
            self.client.batch_execute(&set).await.ok()?;
        }
        for statement in statements(sql) {
            if self.client.batch_execute(statement.text).await.is_err() {
                return Some(statement.line);
            }
        }
        None
    }

    /// After a statement outside a transaction failed: the INVALID indexes
    /// it may have left (a failed `CREATE INDEX CONCURRENTLY` does), named
    /// in the message with what to do.
    pub(super) async fn name_invalid_indexes(&mut self, error: &mut Error) {
        let Error::Sql { statement, message, .. } = error else {
            return;
        };
        if !statement.to_ascii_uppercase().contains("CONCURRENTLY") {
            return;
        }
        let sql = self.invalid_indexes_sql();
        let Ok(rows) = self.query(&sql).await else {
            return;
        };
        let names: Vec<String> = rows
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        if !names.is_empty() {
            message.push_str(&format!(
                "; it left {} INVALID: drop {} with DROP INDEX CONCURRENTLY before running again",
                names.join(", "),
                if names.len() == 1 { "it" } else { "them" }
            ));
        }
    }

    /// [`Lock::Table`]'s way to keep others out while a no-transaction
    /// script runs: a row lock lasts one transaction, so the lock row
    /// records this session as the holder of a lease (committed), which
    /// others wait for as long as this session exists; it is cleared with
    /// the tracking row, or at once on failure. A killed holder's lease is
    /// ignored (its session is gone from `pg_stat_activity`).
    pub(super) async fn run_under_lease(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
        waited: &mut Option<Duration>,
    ) -> Result<()> {
        let set = format!(
            "UPDATE {} SET holder = {}, since = now() WHERE id = 1",
            self.lock_table,
            literal(&self.me)
        );
        self.query(&set).await.map_err(pg("taking the lock table's lease"))?;
        let ran = match self.commit().await {
            Ok(()) => match self.run_each(migrator, m, direction, script).await {
                Ok(()) => self.begin(migrator, waited).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let clear = format!(
            "UPDATE {} SET holder = NULL, since = NULL WHERE id = 1 AND holder = {}",
            self.lock_table,
            literal(&self.me)
        );
        // In the transaction that records the migration, or on its own.
        if ran.is_err() {
            let _ = self.rollback().await;
        }
        let cleared = self
            .query(&clear)
            .await
            .map(drop)
            .map_err(pg("releasing the lock table's lease"));
        ran.and(cleared)
    }

    /// Runs `script` one statement at a time, in autocommit (a batched
    /// backfill batch by batch).
    pub(super) async fn run_each(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
    ) -> Result<()> {
        let Some((timeout, _)) = self.table_lock else {
            return self.run_unlocked(migrator, m, direction, script).await;
        };
        // Outside a transaction, for the session: set, then restored on
        // every path.
        let rows = self
            .query(&format!(
                "SELECT current_setting('lock_timeout'), set_config('lock_timeout', '{}', false)",
                millis(timeout)
            ))
            .await
            .map_err(pg("setting lock_timeout"))?;
        let old = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_default();
        let ran = self.run_unlocked(migrator, m, direction, script).await;
        let restored = self
            .query(&format!("SELECT set_config('lock_timeout', {}, false)", literal(&old)))
            .await
            .map(drop)
            .map_err(pg("restoring lock_timeout"));
        ran.and(restored)
    }

    /// [`run_each_statement`](Self::run_each_statement), or a batched
    /// backfill ([`crate::backfill::run`]).
    async fn run_unlocked(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        script: &Script,
    ) -> Result<()> {
        match script.batch() {
            Some(size) => crate::backfill::run(self, migrator, m, script, size).await,
            None => self.run_each_statement(m, direction, script).await,
        }
    }

    pub(super) async fn run_each_statement(
        &mut self,
        m: &Migration,
        direction: Direction,
        script: &Script,
    ) -> Result<()> {
        let sql = script.sql();
        for Statement { text, line, offset } in statements(sql) {
            let mut tries = 0;
            let result = loop {
                tries += 1;
                let result = self.client.batch_execute(text).await;
                if let Err(e) = &result
                    && self.retry_lock_timeout(e, tries).await
                {
                    continue;
                }
                break result;
            };
            if let Err(e) = result {
                let line = match e.server().and_then(|d| d.position) {
                    Some(p) => line_at(sql, offset + split::byte_offset(text, p)),
                    None => line,
                };
                let mut error = sql_error(m, direction, script, line, text.to_owned(), &e, false);
                self.name_lock_timeout(&mut error, &e, tries);
                self.name_invalid_indexes(&mut error).await;
                return Err(error);
            }
        }
        Ok(())
    }

    /// The statements that record `m` as run in `direction`, in the open
    /// transaction: the script's savepoint released first when
    /// `release_savepoint` (in a grouped run each one left open nests the
    /// next script one subtransaction deeper, and the server's check of
    /// whether a row was written by this transaction walks every open level:
    /// `TransactionIdIsCurrentTransactionId` in PostgreSQL's xact.c), the
    /// tracking row, and, outside a grouped run, the history's summary
    /// read after it, which the next transaction compares with (a grouped
    /// run compares once, after its last migration, reading the history
    /// again then). `duration_ms` is SQL: a number, or an expression.
    pub(super) fn record_tail(
        &self,
        migrator: &Migrator<'_>,
        m: &Migration,
        direction: Direction,
        duration_ms: &str,
        release_savepoint: bool,
    ) -> String {
        let mut sql = if release_savepoint {
            "RELEASE SAVEPOINT migrate_script;\n".to_owned()
        } else {
            String::new()
        };
        sql.push_str(&self.record_sql(m, direction, duration_ms));
        if direction == Direction::Up && m.up().batch().is_some() {
            sql.push_str(";\n");
            sql.push_str(&self.forget_progress_sql(migrator, m));
        }
        if migrator.grouped { sql } else { self.with_summary(sql) }
    }

    /// After [`record_tail`](Self::record_tail)'s statements ran: the
    /// summary in the last of `sets`, or none in a grouped run.
    pub(super) fn keep_recorded_summary(&mut self, migrator: &Migrator<'_>, sets: &mut Vec<Vec<Vec<Option<String>>>>) {
        if migrator.grouped {
            self.summary = None;
        } else {
            self.keep_summary(sets);
        }
    }

    pub(super) fn record_sql(&self, m: &Migration, direction: Direction, duration_ms: &str) -> String {
        // With store_down, the down script too (`NULL` without one).
        let (column, down) = match (self.store_down, m.down()) {
            (false, _) => ("", String::new()),
            (true, Some(down)) => (", down_sql", format!(", {}", literal(down.sql()))),
            (true, None) => (", down_sql", ", NULL".to_owned()),
        };
        match direction {
            Direction::Up => format!(
                "INSERT INTO {} (version, name, checksum, applied_at, duration_ms{column}) \
                 VALUES ({}, {}, '{}', clock_timestamp(), {duration_ms}{down})",
                self.table,
                m.version_i64(),
                literal(m.name()),
                m.checksum(),
            ),
            Direction::Down => format!("DELETE FROM {} WHERE version = {}", self.table, m.version_i64()),
        }
    }
}
