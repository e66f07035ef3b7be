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
//! column, which it adds to tracking tables that lack it, with a hash of
//! the raw catalog rows it was printed from. At each start one query
//! compares that hash with the live catalog's; only when it differs is the
//! live schema read and compared with the record; a difference is drift,
//! listed as `cargo migrate diff` lists it. A database migrated before this column
//! existed is checked from its next migration on; `cargo migrate diff`
//! compares it by replay at any time.

use postgres::{Client, Config};

use super::client::PgClient;
use super::scratch::ScratchDatabase;
use super::{Postgres, pg};
use crate::drift::replayable;
use crate::model::{Filter, Model};
use crate::plan::{find, matches};
use crate::{Applied, DriftPolicy, Error, Migrator, Result, SchemaDiff};

/// The tracking table's column that holds the schema after the newest
/// migration.
const COLUMN: &str = "schema_model";

/// The tracking table's column that holds [`LIVE_STATS`] as they were when a
/// start-up last found the live schema equal to the record.
pub(super) const STATS_COLUMN: &str = "schema_stats";

/// Two statements, appended to a start-up's own in its round trip: whether
/// the server counts (`SHOW track_counts`), and a row of the server's counts of rows inserted, updated and deleted in each system
/// catalog the schema model is read from, in this database (every
/// `CREATE`, `ALTER` and `DROP` writes some): `pg_class`, `pg_attribute`,
/// `pg_attrdef`, `pg_index`, `pg_constraint`, `pg_trigger`, `pg_rewrite`,
/// `pg_proc`, `pg_type`, `pg_enum`, `pg_sequence`, `pg_depend`,
/// `pg_namespace`, `pg_extension`, by their OIDs, which are fixed in
/// PostgreSQL's catalog headers (`pg_class.h` and the others: no name
/// lookups in a new session). PostgreSQL's manual, "The Cumulative
/// Statistics System": `pg_stat_get_tuples_inserted` and friends count per
/// table, for catalogs too, when `track_counts` is on. So unchanged counts
/// mean no DDL the server has counted: then a start-up need not hash the
/// catalog ([`live_stats`] makes them one text, as recorded).
///
/// A session reports its counts to the shared statistics when it goes
/// idle, at most once a second (`PGSTAT_MIN_INTERVAL` in PostgreSQL's
/// `pgstat.c`); until then they are this session's pending counts, which
/// `pg_stat_get_xact_tuples_*` return (`find_tabstat_entry` in
/// `pgstat_relation.c` reads the pending entry, which sums every
/// transaction since the last report): the sum of both counts this
/// session's own DDL at once (tested:
/// `pg_drift::pg_start_up_check_trusts_unchanged_catalog_statistics_and_sees_ddl_once_counted`).
/// It is a hint, not a proof: DDL committed by *another* session within
/// about the last second may not be counted yet; that start-up then misses
/// it, and the next one sees it. A statistics reset or a crash (whose
/// recovery discards them) zeroes the counts: a start-up would then skip
/// the hash only if all 51 counts had climbed back to exactly their
/// recorded values. Every run that applies a migration compares the schema
/// itself, under the lock, as does `cargo migrate diff`.
///
/// The counts are summed and formatted by the client, and the catalogs are
/// a `VALUES` list, so that the statement names no operator, aggregate or
/// set-returning function: in a new session each costs a catalog lookup
/// (0.70 M instructions of the server's in a new session against 1.02 M for
/// `current_setting`, `unnest`, `array_agg` and `+` on the server, measured
/// with callgrind on PostgreSQL 15; see BENCHMARKS.md).
pub(super) const LIVE_STATS: &str = "SHOW track_counts;\n\
SELECT pg_stat_get_tuples_inserted(c), pg_stat_get_xact_tuples_inserted(c), \
pg_stat_get_tuples_updated(c), pg_stat_get_xact_tuples_updated(c), \
pg_stat_get_tuples_deleted(c), pg_stat_get_xact_tuples_deleted(c) \
FROM (VALUES (1259::oid), (1249), (2604), (2610), (2606), (2620), (2618), (1255), (1247), (3501), (2224), \
(2608), (2615), (3079), (2609), (3256), (3456)) AS v(c)";

/// [`LIVE_STATS`]'s two results as one text, as a start-up records them:
/// `on {{inserted,updated,deleted},…}`, each the shared count plus this
/// session's pending one, a catalog per brace in the order of the list
/// (the text the server's `array_agg` printed in earlier releases, so their
/// records still compare equal). A count that is not a number makes a text
/// no record holds.
pub(super) fn live_stats(track: &[Vec<Option<String>>], counts: &[Vec<Option<String>>]) -> String {
    let track = track
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default();
    let catalogs: Vec<String> = counts
        .iter()
        .map(|row| {
            let n: Vec<String> = row
                .chunks(2)
                .map(|pair| {
                    let sum = pair
                        .iter()
                        .map(|c| c.as_deref().and_then(|c| c.parse::<i64>().ok()))
                        .try_fold(0i64, |sum, c| Some(sum + c?));
                    sum.map_or_else(|| "?".to_owned(), |s| s.to_string())
                })
                .collect();
            format!("{{{}}}", n.join(","))
        })
        .collect();
    format!("{track} {{{}}}", catalogs.join(","))
}

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
        let subset = self.subset(versions)?;
        let mut scratch = ScratchDatabase::create(server, "migrate_replay_")?;
        let mut replay = Migrator::new(&subset)
            .table(self.table_name())
            .allow_out_of_order(true)
            // A replay makes what the migrations make, contracts included.
            .contract(true)
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
        Ok(SchemaDiff::new(versions.last().copied(), expected, actual))
    }

    /// `"schema"."table"`, or `"table"`.
    pub(super) fn qualified_table(&self) -> String {
        let table = crate::history::quote(self.table_name());
        match &self.schema {
            Some(s) => format!("{}.{table}", crate::history::quote(s)),
            None => table,
        }
    }
}

/// A hash of the raw catalog rows that the schema model is printed from
/// (`$1`: the schema, else `current_schema()`; `$2`: the tracking table,
/// left out with its lock, head and backfill tables and their indexes): names, types, node
/// trees (`adbin`, `conbin`, `indexprs`, `ev_action`, …), no deparsing.
/// Cheap (one query; deparsing with `pg_get_expr` and friends is what
/// makes reading the model cost milliseconds per table), and it changes
/// with every change the model can see, so an equal hash means an equal
/// schema; a different one (also after a dump and restore, which renumbers
/// OIDs, or a major upgrade) only means the model is read and compared.
const CATALOG_HASH: &str = "\
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = coalesce($1::text, current_schema())::name), \
skip AS (SELECT c.oid FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relname IN ($2::text::name, ($2::text || '_lock')::name, ($2::text || '_head')::name, ($2::text || '_backfill')::name) \
         UNION ALL SELECT x.indexrelid FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid \
         WHERE c.relnamespace = (SELECT oid FROM ns) AND c.relname IN ($2::text::name, ($2::text || '_lock')::name, ($2::text || '_head')::name, ($2::text || '_backfill')::name)), \
rels AS (SELECT c.oid FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM ns) AND c.oid NOT IN (SELECT oid FROM skip)) \
SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) FROM ( \
 SELECT concat_ws(' ', 'c', c.oid, c.relname, c.relkind, c.relnatts, c.relchecks, c.relam, c.relpersistence, c.reloftype, c.relispartition, \
   c.relrowsecurity, c.relforcerowsecurity, c.relpartbound, \
   (SELECT string_agg(h.inhparent::text, ',' ORDER BY h.inhseqno) FROM pg_inherits h WHERE h.inhrelid = c.oid)) \
   FROM pg_class c WHERE c.oid IN (SELECT oid FROM rels) \
 UNION ALL SELECT concat_ws(' ', 'a', a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull, a.attisdropped, \
   a.atthasdef, a.attidentity, a.attgenerated, a.attcollation) FROM pg_attribute a WHERE a.attrelid IN (SELECT oid FROM rels) AND a.attnum > 0 \
 UNION ALL SELECT concat_ws(' ', 'd', d.adrelid, d.adnum, d.adbin) FROM pg_attrdef d WHERE d.adrelid IN (SELECT oid FROM rels) \
 UNION ALL SELECT concat_ws(' ', 'i', x.indexrelid, x.indrelid, x.indisunique, x.indisprimary, x.indnkeyatts, x.indnatts, x.indkey, x.indoption, \
   x.indcollation, x.indclass, x.indexprs, x.indpred) FROM pg_index x WHERE x.indrelid IN (SELECT oid FROM rels) \
 UNION ALL SELECT concat_ws(' ', 'k', k.oid, k.conname, k.contype, k.conrelid, k.contypid, k.conkey, k.confrelid, k.confkey, k.confdeltype, \
   k.confupdtype, k.condeferrable, k.condeferred, k.conbin, k.conindid, k.conislocal, k.conparentid, f.relname, fn.nspname) \
   FROM pg_constraint k LEFT JOIN pg_class f ON f.oid = k.confrelid LEFT JOIN pg_namespace fn ON fn.oid = f.relnamespace \
   WHERE k.connamespace = (SELECT oid FROM ns) AND k.conrelid NOT IN (SELECT oid FROM skip) \
 UNION ALL SELECT concat_ws(' ', 't', g.oid, g.tgrelid, g.tgname, g.tgfoid, g.tgtype, g.tgenabled, g.tgattr, g.tgargs, g.tgqual, \
   g.tgisinternal, g.tgparentid, g.tgdeferrable, g.tginitdeferred) FROM pg_trigger g WHERE g.tgrelid IN (SELECT oid FROM rels) \
 UNION ALL SELECT concat_ws(' ', 'r', r.oid, r.ev_class, r.ev_action) FROM pg_rewrite r WHERE r.ev_class IN (SELECT oid FROM rels) \
 UNION ALL SELECT concat_ws(' ', 'p', p.oid, p.proname, p.prokind, p.prolang, p.prosrc, p.probin, p.prosqlbody, p.proargtypes, \
   p.proallargtypes, p.proargmodes, p.proargnames, p.proargdefaults, p.prorettype, p.proretset, p.provolatile, p.proisstrict, \
   p.prosecdef, p.proleakproof, p.proparallel, p.procost, p.prorows, p.proconfig, p.prosupport) \
   FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns) \
 UNION ALL SELECT concat_ws(' ', 'y', t.oid, t.typname, t.typtype, t.typbasetype, t.typtypmod, t.typnotnull, t.typdefault, t.typdefaultbin) \
   FROM pg_type t WHERE t.typnamespace = (SELECT oid FROM ns) AND t.typtype IN ('e', 'd') \
 UNION ALL SELECT concat_ws(' ', 'e', e.enumtypid, e.enumsortorder, e.enumlabel) FROM pg_enum e \
   WHERE e.enumtypid IN (SELECT oid FROM pg_type WHERE typnamespace = (SELECT oid FROM ns)) \
 UNION ALL SELECT concat_ws(' ', 's', s.seqrelid, s.seqtypid, s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, s.seqcycle) \
   FROM pg_sequence s WHERE s.seqrelid IN (SELECT oid FROM rels) \
 UNION ALL SELECT concat_ws(' ', 'x', d.classid, d.objid, d.objsubid, d.refclassid, d.refobjid, d.refobjsubid, d.deptype) \
   FROM pg_depend d WHERE d.deptype = 'e' OR (d.deptype IN ('a', 'i') AND d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM rels)) \
 UNION ALL SELECT concat_ws(' ', 'l', to_jsonb(co)::text) FROM pg_collation co WHERE co.collnamespace = (SELECT oid FROM ns) \
 UNION ALL SELECT concat_ws(' ', 'o', o.oid, o.polname, o.polrelid, o.polcmd, o.polpermissive, o.polroles, o.polqual, o.polwithcheck) \
   FROM pg_policy o WHERE o.polrelid IN (SELECT oid FROM rels) \
 UNION ALL SELECT concat_ws(' ', 'm', m.classoid, m.objoid, m.objsubid, m.description) FROM pg_description m \
   WHERE (m.classoid = 'pg_class'::regclass AND m.objoid IN (SELECT oid FROM rels)) \
   OR (m.classoid = 'pg_proc'::regclass AND m.objoid IN (SELECT oid FROM pg_proc WHERE pronamespace = (SELECT oid FROM ns))) \
   OR (m.classoid = 'pg_type'::regclass AND m.objoid IN (SELECT oid FROM pg_type WHERE typnamespace = (SELECT oid FROM ns))) \
   OR (m.classoid = 'pg_constraint'::regclass AND m.objoid IN (SELECT oid FROM pg_constraint WHERE connamespace = (SELECT oid FROM ns))) \
   OR (m.classoid = 'pg_trigger'::regclass AND m.objoid IN (SELECT oid FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM rels))) \
   OR (m.classoid = 'pg_policy'::regclass AND m.objoid IN (SELECT oid FROM pg_policy WHERE polrelid IN (SELECT oid FROM rels))) \
 UNION ALL SELECT concat_ws(' ', 'v', current_setting('server_version_num'), (SELECT oid FROM ns)) \
) AS f(x)";

/// The newest applied version, its record's first line, and (when there
/// is one) the live catalog's hash.
type Head = (u64, Option<String>, Option<String>);

/// The first line of a recorded schema: `catalog {CATALOG_HASH}`.
fn hash_line(hash: &str) -> String {
    format!("catalog {hash}")
}

impl<C: PgClient> Postgres<'_, C> {
    /// The newest applied version, the first line of the schema recorded
    /// with it (`to_jsonb` of the row, so a tracking table without the
    /// column reads as none, without an error that would end a
    /// transaction), and the live catalog's hash: one round trip.
    async fn recorded_head(&mut self, migrator: &Migrator<'_>) -> Result<Option<Head>> {
        // The hash only when there is a record to compare it with (an
        // InitPlan runs when first used).
        let sql = format!(
            "SELECT version, head, CASE WHEN head <> '' THEN ({CATALOG_HASH}) END \
             FROM (SELECT version, split_part(to_jsonb(m) ->> '{COLUMN}', E'\\n', 1) AS head \
                   FROM {} AS m ORDER BY version DESC LIMIT 1) AS newest",
            self.table
        );
        let rows = self
            .client
            .query(&sql, &[&migrator.schema, &migrator.table_name()])
            .await
            .map_err(pg("reading the recorded schema"))?;
        Ok(rows.first().map(|r| {
            let version: i64 = r.get(0);
            (u64::try_from(version).unwrap_or(0), r.get(1), r.get(2))
        }))
    }

    /// The schema recorded with version `version`, as text.
    async fn recorded_model(&mut self, version: u64) -> Result<Option<String>> {
        let sql = format!(
            "SELECT to_jsonb(m) ->> '{COLUMN}' FROM {} AS m WHERE version = $1",
            self.table
        );
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(&sql, &[&version])
            .await
            .map_err(pg("reading the recorded schema"))?;
        Ok(rows.first().and_then(|r| r.get(0)))
    }

    /// The start-up drift check: when every applied migration in
    /// `history` is one of ours, unmodified, and the newest has a recorded
    /// schema, compares the live schema with it, as the migrator's policy
    /// says: first by the catalog's hash (one query), then, when that
    /// differs, by reading the model. Outside the lock, a migration
    /// committed by another process between the reads is not drift: the
    /// record is read again after the live schema, and a change skips the
    /// check.
    pub(super) async fn check_schema(
        &mut self,
        migrator: &Migrator<'_>,
        history: &[Applied],
        startup: bool,
    ) -> Result<()> {
        if migrator.drift == DriftPolicy::Off {
            return Ok(());
        }
        // A history from before a squash, as the squashed set sees it.
        let normalized = crate::squash::normalize(migrator.migrations, history);
        let history: &[Applied] = normalized.as_deref().unwrap_or(history);
        let Some(newest) = history.last() else {
            return Ok(());
        };
        if !history
            .iter()
            .all(|a| find(migrator.migrations, a.version).is_some_and(|m| matches(m, a)))
        {
            return Ok(());
        }
        self.check_schema_at(migrator, Some(newest.version), startup).await
    }

    /// [`check_schema`](Self::check_schema) once the history is known to
    /// be ours, unmodified, up to version `newest`. At a `startup` with
    /// nothing to apply, first compares the catalogs' statistics
    /// ([`LIVE_STATS`]) with those of the last start-up that found the schema
    /// unchanged, and skips the catalog's hash when they are equal; when
    /// the schema is then found unchanged, keeps the new statistics.
    pub(super) async fn check_schema_at(
        &mut self,
        migrator: &Migrator<'_>,
        newest: Option<u64>,
        startup: bool,
    ) -> Result<()> {
        let Some(newest) = newest.filter(|_| migrator.drift != DriftPolicy::Off) else {
            return Ok(());
        };
        let stats = if startup {
            match self.startup_stats.take() {
                // Read with the history's digest, in its round trip.
                Some(read) => Some(read),
                None => self.recorded_stats(newest).await?,
            }
        } else {
            None
        };
        // What was verified depends on what the check leaves out: a
        // record made with other `ignore` patterns is not this one's.
        let stats = stats.map(|(recorded, live)| (recorded, format!("{live} ignore:{}", migrator.ignore.join(","))));
        if let Some((recorded, live)) = &stats
            && live.starts_with("on ")
            && recorded.as_deref() == Some(live.as_str())
        {
            return Ok(());
        }
        if self.schema_unchanged(migrator, newest).await?
            && let Some((_, live)) = stats
        {
            self.keep_stats(newest, &live).await;
        }
        Ok(())
    }

    /// The statistics recorded with version `newest` (when its row is the
    /// newest and the column exists) and the live ones ([`LIVE_STATS`]):
    /// one round trip.
    async fn recorded_stats(&mut self, newest: u64) -> Result<Option<(Option<String>, String)>> {
        // A simple query: one round trip (a prepared one takes two).
        let sql = format!(
            "SELECT (SELECT m.{STATS_COLUMN} FROM {} AS m WHERE version = {newest});\n{LIVE_STATS}",
            self.table
        );
        let sets = match self.query_sets(&sql).await {
            Ok(sets) => sets,
            // A tracking table from before the column: compare the catalog.
            Err(e) if super::state(&e) == Some(super::sqlstate::UNDEFINED_COLUMN) => return Ok(None),
            Err(e) => return Err(pg("reading the catalogs' statistics")(e)),
        };
        let [recorded, track, counts] = <[_; 3]>::try_from(sets).unwrap_or_default();
        let recorded = recorded.into_iter().next().and_then(|r| r.into_iter().next().flatten());
        Ok(Some((recorded, live_stats(&track, &counts))))
    }

    /// Records `live` statistics with version `newest` (in the head
    /// table's row when that is where they were read), after the schema
    /// was found unchanged. Best effort: a role that may not write the
    /// tracking table, a standby, or a table made before the column was
    /// added (the next migration adds it) only means the next start-up
    /// hashes the catalog again.
    async fn keep_stats(&mut self, newest: u64, live: &str) {
        let version = i64::try_from(newest).unwrap_or(i64::MAX);
        // Where they were read from: the head table's row, else the newest
        // tracking row.
        let table = if self.stats_in_head {
            &self.head_table
        } else {
            &self.table
        };
        // A row another transaction holds is left as it is, never waited
        // for: a run applying migrations holds the head's row from its
        // first migration to its commit (the trigger deletes it), and a
        // start-up must not wait behind that.
        let sql = format!(
            "UPDATE {table} SET {STATS_COLUMN} = $1 WHERE ctid = ANY (ARRAY(SELECT ctid FROM {table} \
             WHERE version = $2 AND {STATS_COLUMN} IS DISTINCT FROM $1 FOR UPDATE SKIP LOCKED))"
        );
        let _ = self.client.execute(&sql, &[&live, &version]).await;
    }

    /// Whether the live schema is the one recorded with version `newest`
    /// (`false` when there is no usable record: nothing to compare); drift
    /// is an error or a warning, as the migrator's policy says.
    async fn schema_unchanged(&mut self, migrator: &Migrator<'_>, newest: u64) -> Result<bool> {
        let Some((version, Some(head), hash)) = self.recorded_head(migrator).await? else {
            return Ok(false);
        };
        if version != newest {
            return Ok(false);
        }
        if hash.is_some_and(|h| head == hash_line(&h)) {
            return Ok(true);
        }
        let Some(text) = self.recorded_model(version).await? else {
            return Ok(false);
        };
        let record = text.strip_prefix(&format!("{head}\n")).unwrap_or(&text);
        let Some(expected) = Model::from_record(record) else {
            return Ok(false); // another version's format: checked after the next migration
        };
        let filter = migrator.filter()?;
        let actual = Model::read_pg(self.client, migrator.schema.as_deref(), &filter).await?;
        let differences = expected.diff(&actual);
        if differences.is_empty() {
            return Ok(true);
        }
        match self.recorded_head(migrator).await? {
            Some((v, Some(h), _)) if v == version && h == head => {
                migrator.drifted(Some(version), &differences).map(|()| false)
            }
            _ => Ok(false),
        }
    }

    /// After a run that changed the history, under the migration lock:
    /// stamps the history's digest (see
    /// [`stamp_history_digest`](Self::stamp_history_digest)) and, unless
    /// the drift check is off, stores the live schema with the newest
    /// applied migration, adding the columns to a tracking table that
    /// lacks them.
    pub(super) async fn record_schema(
        &mut self,
        migrator: &Migrator<'_>,
        waited: &mut Option<std::time::Duration>,
    ) -> Result<()> {
        use crate::backend::Backend as _;
        self.begin(migrator, waited).await?;
        let recorded = match self.stamp_history_digest(migrator).await {
            Ok(()) if migrator.drift == DriftPolicy::Off => Ok(()),
            Ok(()) => self.write_schema(migrator).await,
            Err(e) => Err(e),
        };
        match recorded {
            Ok(()) => self.commit().await,
            Err(e) => {
                let _ = self.rollback().await;
                Err(e)
            }
        }
    }

    /// [`record_schema`](Self::record_schema)'s writes, in the open
    /// transaction.
    pub(super) async fn write_schema(&mut self, migrator: &Migrator<'_>) -> Result<()> {
        let filter = migrator.filter()?;
        let model = Model::read_pg(self.client, migrator.schema.as_deref(), &filter).await?;
        let table = self.table.clone();
        let failed = pg(format!("recording the schema in {table}"));
        let written: std::result::Result<(), super::client::PgError> = async {
            // The statistics are recorded by the next start-up that finds
            // this schema: this backend reports its own counts later.
            self.client
                .batch_execute(&format!(
                    "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {COLUMN} text, ADD COLUMN IF NOT EXISTS {STATS_COLUMN} text"
                ))
                .await?;
            let rows = self
                .client
                .query(
                    &format!("SELECT ({CATALOG_HASH})"),
                    &[&migrator.schema, &migrator.table_name()],
                )
                .await?;
            let hash: String = rows.first().map(|r| r.get(0)).unwrap_or_default();
            self.client
                .execute(
                    &format!(
                        "UPDATE {table} SET {COLUMN} = $1, {STATS_COLUMN} = NULL WHERE version = (SELECT max(version) FROM {table})"
                    ),
                    &[&format!("{}\n{}", hash_line(&hash), model.to_record())],
                )
                .await?;
            Ok(())
        }
        .await;
        written.map_err(failed)
    }
}
