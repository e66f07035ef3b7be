//! The tracking table: which migrations a database has applied.

#[cfg(feature = "rusqlite")]
use rusqlite::{Connection, params};

#[cfg(feature = "rusqlite")]
use crate::{Error, Result};

/// One row of the tracking table: a migration the database has applied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// The version.
    pub version: u64,
    /// The name it had when it was applied.
    pub name: String,
    /// The checksum of its up file when it was applied (64 hex digits).
    pub checksum: String,
    /// When it was applied, UTC, RFC 3339 (`2026-11-22T10:00:00.000Z`).
    pub applied_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
}

/// Quotes an SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `applied_at` of a row recorded at `time`: UTC, `2026-11-22T10:00:00.000Z`,
/// the text SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` gives (which
/// the table was written with before; formatted here, the `INSERT` SQLite
/// compiles again after every migration's DDL is shorter). Milliseconds
/// are truncated, as SQLite's are; a time before 1970 reads as 1970.
#[cfg(feature = "rusqlite")]
pub(crate) fn applied_at(time: std::time::SystemTime) -> AppliedAt {
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let (days, ms_of_day) = (ms / 86_400_000, ms % 86_400_000);
    // Days since 1970-01-01 to a proleptic Gregorian date: Howard
    // Hinnant's `civil_from_days` ("chrono-Compatible Low-Level Date
    // Algorithms"), counting in 400-year eras from 0000-03-01, with no
    // negative days to handle.
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400 + u64::from(month <= 2)).min(9999);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for slot in out[at..at + width].iter_mut().rev() {
            *slot = b'0' + u8::try_from(n % 10).unwrap_or(0);
            n /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, ms_of_day / 3_600_000);
    put(14, 2, ms_of_day / 60_000 % 60);
    put(17, 2, ms_of_day / 1000 % 60);
    put(20, 3, ms_of_day % 1000);
    AppliedAt(out)
}

/// See [`applied_at`].
#[cfg(feature = "rusqlite")]
pub(crate) struct AppliedAt([u8; 24]);

#[cfg(feature = "rusqlite")]
impl AppliedAt {
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits and punctuation are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// From how many migrations the tracking table gets its index for
/// counting (see `Table::count_index`). Measured with callgrind on the
/// benchmark's sets: at 100 the index costs a start-up 0.5 % and a fresh
/// apply 1.8 % more instructions; at 1,000 it saves a start-up more than
/// it costs, and the count's pages read from disk grow with the history.
#[cfg(feature = "rusqlite")]
pub(crate) const COUNT_INDEX_FROM: usize = 256;

/// The table's SQL text, for the statements that name it.
#[cfg_attr(not(feature = "rusqlite"), allow(dead_code))]
pub(crate) struct Table {
    pub(crate) name: String,
    select: String,
    insert: String,
    insert_values: String,
    delete: String,
    create: String,
    summary: String,
    compact: String,
    unchanged: String,
    stamp: String,
    stamp_column: String,
    digest_read: String,
    digest_stamp: String,
    digest_column: String,
    digest_clear: String,
}

/// The history as the PostgreSQL backend compares it on the server, one
/// line per migration: `version length(name) name checksum`, so that no
/// two histories read the same (the name's length fixes where it ends).
#[cfg(feature = "postgres")]
pub(crate) fn history_text(migrations: &[crate::Migration]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(migrations.len() * 96);
    for (i, m) in migrations.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let _ = write!(
            text,
            "{} {} {} {}",
            m.version(),
            m.name().chars().count(),
            m.name(),
            m.checksum()
        );
    }
    text
}

/// A 128-bit digest of a whole history: the version, name and checksum of
/// every migration, in order. The newest tracking row carries it (column
/// `history_digest`) once the runtime has verified, row by row, that the
/// table holds exactly these migrations; a start-up whose code has the same
/// digest then reads one row instead of the whole history.
///
/// Not a cryptographic hash, and it need not be one: every checksum in it
/// already is (SHA-256 of the file), and what it guards against is an
/// accident — code and history that differ — never an adversary who can
/// write the tracking table anyway. Each 64-bit lane is a chain of steps
/// `h → (rotl(h, 23) ^ w) · K` with an odd `K`, each a bijection of `h`
/// for a fixed input word: two histories of the same shape that differ in a
/// single word (one checksum, one name, one version) always have different
/// digests, and the shape itself (count, name lengths) is hashed too.
pub(crate) fn history_digest(migrations: &[crate::Migration]) -> [u8; 16] {
    digest_of(migrations.iter().map(|m| (m.version(), m.name(), m.checksum())))
}

/// [`history_digest`] of `(version, name, checksum)` entries, oldest
/// first: what the build computes for the generated module's `migrator()`
/// (see [`Migrator::__code_digest`](crate::Migrator::__code_digest)).
#[doc(hidden)]
pub fn digest_of<'a>(entries: impl ExactSizeIterator<Item = (u64, &'a str, crate::Checksum)>) -> [u8; 16] {
    struct Lanes(u64, u64);
    impl Lanes {
        fn word(&mut self, w: u64) {
            self.0 = (self.0.rotate_left(23) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            self.1 = (self.1.rotate_left(31) ^ w).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        }
        fn bytes(&mut self, b: &[u8]) {
            self.word(b.len() as u64);
            let mut chunks = b.chunks_exact(8);
            for c in &mut chunks {
                self.word(u64::from_le_bytes(c.try_into().unwrap_or_default()));
            }
            let mut last = [0u8; 8];
            last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
            self.word(u64::from_le_bytes(last));
        }
    }
    // Odd, distinct starting points and multipliers (the 64-bit golden
    // ratio and a MurmurHash3 finalizer constant).
    let mut h = Lanes(0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344);
    h.word(entries.len() as u64);
    for (version, name, checksum) in entries {
        h.word(version);
        h.bytes(name.as_bytes());
        h.bytes(checksum.as_bytes());
    }
    // Final avalanche, so that nearby states do not give nearby digests.
    let fin = |mut x: u64| {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    };
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&fin(h.0 ^ h.1.rotate_left(17)).to_le_bytes());
    out[8..].copy_from_slice(&fin(h.1 ^ h.0.rotate_left(41)).to_le_bytes());
    out
}

impl Table {
    /// The table named `name`: the default one (`_migrations`, which the
    /// generated `migrator()` names too) made once per process and
    /// shared, any other made now.
    pub(crate) fn shared(name: &str) -> std::sync::Arc<Self> {
        static DEFAULT: std::sync::OnceLock<std::sync::Arc<Table>> = std::sync::OnceLock::new();
        if name != crate::migrator::DEFAULT_TABLE {
            return std::sync::Arc::new(Self::new(name));
        }
        std::sync::Arc::clone(DEFAULT.get_or_init(|| std::sync::Arc::new(Self::new(name))))
    }

    pub(crate) fn new(name: &str) -> Self {
        let q = quote(name);
        Self {
            name: name.to_owned(),
            select: format!("SELECT version, name, checksum, applied_at, duration_ms FROM {q} ORDER BY version"),
            insert: format!(
                "INSERT INTO {q} (version, name, checksum, applied_at, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5)"
            ),
            // The same row without the column list, for a table with
            // exactly `create`'s columns (see `own_layout`): SQLite compiles
            // this statement again after every migration's DDL, and
            // resolving the list's names is a fifth of that work (and
            // numbered parameters cost more to parse than `?`).
            insert_values: format!("INSERT INTO {q} VALUES (?, ?, ?, ?, ?, NULL, NULL)"),
            delete: format!("DELETE FROM {q} WHERE version = ?1"),
            create: format!(
                "CREATE TABLE IF NOT EXISTS {q} (\n    \
                 version INTEGER PRIMARY KEY,\n    \
                 name TEXT NOT NULL,\n    \
                 checksum TEXT NOT NULL,\n    \
                 applied_at TEXT NOT NULL,\n    \
                 duration_ms INTEGER NOT NULL,\n    \
                 schema_version INTEGER,\n    \
                 history_digest BLOB\n)"
            ),
            // data_version changes when another connection commits, and
            // only then. A pragma statement: no virtual table to connect,
            // and cheap to prepare again after a migration's DDL expired it
            // (every statement is, once the schema changed).
            summary: "PRAGMA data_version".to_owned(),
            compact: format!("SELECT version, name, checksum FROM {q} ORDER BY version"),
            // `schema_version` (the column) is SQLite's schema cookie right
            // after that migration, when the runtime verified the schema
            // then; `pragma_schema_version` is today's. SQLite changes the
            // cookie with every change to the schema ("PRAGMA
            // schema_version" in SQLite's documentation).
            unchanged: format!(
                "SELECT m.schema_version = (SELECT schema_version FROM pragma_schema_version) FROM {q} AS m WHERE m.version = ?1"
            ),
            stamp: format!(
                "UPDATE {q} SET schema_version = (SELECT schema_version FROM pragma_schema_version) WHERE version = ?1"
            ),
            stamp_column: format!("ALTER TABLE {q} ADD COLUMN schema_version INTEGER"),
            // The newest row, its digest of the history up to it, and the
            // row count: the digest covers every row only while the stamped
            // row is the newest and no row was added below it.
            // …and the schema cookie stamped with it (see `unchanged`),
            // which the start-up compares with today's only when it has a
            // drift check to skip. Written without a table alias, which
            // costs SQLite's prepare about 4 k instructions (callgrind).
            digest_read: format!(
                "SELECT history_digest, version, (SELECT count(*) FROM {q}), schema_version \
                 FROM {q} ORDER BY version DESC LIMIT 1"
            ),
            digest_stamp: format!("UPDATE {q} SET history_digest = ?2 WHERE version = ?1"),
            digest_column: format!("ALTER TABLE {q} ADD COLUMN history_digest BLOB"),
            digest_clear: format!("UPDATE {q} SET history_digest = NULL WHERE history_digest IS NOT NULL"),
        }
    }
}

#[cfg(feature = "rusqlite")]
impl Table {
    fn shape_error(&self, message: impl Into<String>) -> Error {
        Error::TrackingTable {
            table: self.name.clone(),
            message: message.into(),
        }
    }

    /// Every applied migration, oldest first; empty when the table does not exist.
    pub(crate) fn read(&self, conn: &Connection) -> Result<Vec<Applied>> {
        type Row = (
            rusqlite::Result<i64>,
            rusqlite::Result<String>,
            rusqlite::Result<String>,
            rusqlite::Result<String>,
            rusqlite::Result<i64>,
        );
        let rows: rusqlite::Result<Vec<Row>> = conn.prepare_cached(&self.select).and_then(|mut stmt| {
            stmt.query_map([], |row| {
                Ok((row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
            })
            .and_then(Iterator::collect)
        });
        let rows = match rows {
            Ok(rows) => rows,
            // A cached statement can meet a dropped table only when it runs,
            // so both preparing and running can say this.
            Err(e) if e.to_string().contains("no such table") => return Ok(Vec::new()),
            Err(e) if e.to_string().contains("no such column") => {
                return Err(self.shape_error(crate::error::message_of(&e)));
            }
            Err(e) => return Err(Error::db(format!("reading the tracking table `{}`", self.name))(e)),
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (Ok(version), Ok(name), Ok(checksum), Ok(applied_at), Ok(duration_ms)) = row else {
                return Err(self.shape_error(
                    "a row does not have the types version INTEGER, name TEXT, checksum TEXT, applied_at TEXT, duration_ms INTEGER",
                ));
            };
            let version = u64::try_from(version)
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| self.shape_error(format!("a row has version {version}, but versions start at 1")))?;
            out.push(Applied {
                version,
                name,
                checksum,
                applied_at,
                duration_ms,
            });
        }
        Ok(out)
    }

    /// Whether the database has applied exactly `migrations` (same versions,
    /// names and checksums) and nothing else: the common start-up, checked
    /// without allocating. `false` means "look closer", not an error.
    pub(crate) fn matches_exactly(&self, conn: &Connection, migrations: &[crate::Migration]) -> bool {
        use rusqlite::types::ValueRef;
        // Once per run, and the first statement of a start-up when the
        // newest row has no digest: not persistent (see `digest_matches`).
        let Ok(mut stmt) = conn.prepare(&self.compact) else {
            return false;
        };
        let Ok(mut rows) = stmt.query([]) else {
            return false;
        };
        let mut expected = migrations.iter();
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => return expected.next().is_none(),
                Err(_) => return false,
            };
            let Some(m) = expected.next() else {
                return false;
            };
            let same = matches!(row.get_ref(0), Ok(ValueRef::Integer(v)) if v == m.version_i64())
                && matches!(row.get_ref(1), Ok(ValueRef::Text(name)) if name == m.name().as_bytes())
                && matches!(row.get_ref(2), Ok(ValueRef::Text(hex)) if m.checksum().eq_hex(hex));
            if !same {
                return false;
            }
        }
    }

    /// Whether the newest tracking row carries `digest` (the code's
    /// [`history_digest`]) and the table holds exactly as many rows as the
    /// code has migrations, ending at the code's last version: then the
    /// history is the code's, verified row by row when the digest was
    /// written, and unchanged since (every command that rewrites a row
    /// below the newest clears the digests: see
    /// [`clear_digests`](Self::clear_digests)). `false` means "read the
    /// history", never an error: no table, no column (an older release's
    /// table), no digest yet. When it matches: SQLite's schema cookie as
    /// it was when the runtime verified the schema with the newest
    /// migration, if it did (see [`schema_unchanged`](Self::schema_unchanged);
    /// compare it with [`schema_cookie`]).
    pub(crate) fn digest_matches(
        &self,
        conn: &Connection,
        migrations: &[crate::Migration],
        digest: &[u8; 16],
    ) -> Option<Option<i64>> {
        use rusqlite::types::ValueRef;
        let last = migrations.last()?;
        // Not `prepare_cached`: it asks SQLite for a persistent statement,
        // which SQLite prepares without its lookaside memory ("Prepare
        // Flags", SQLITE_PREPARE_PERSISTENT, in SQLite's documentation), and
        // in a new connection this statement's preparation is also where
        // SQLite reads the whole schema: 1,570 more `malloc` calls and
        // 60 k instructions per start-up at N = 100 (callgrind). It runs
        // once per start-up; nothing is lost by not keeping it.
        let mut stmt = conn.prepare(&self.digest_read).ok()?;
        let mut rows = stmt.query([]).ok()?;
        let row = rows.next().ok()??;
        let exact = matches!(row.get_ref(0), Ok(ValueRef::Blob(stored)) if stored == digest)
            && matches!(row.get_ref(1), Ok(ValueRef::Integer(v)) if v == last.version_i64())
            && matches!(row.get_ref(2), Ok(ValueRef::Integer(n)) if usize::try_from(n).is_ok_and(|n| n == migrations.len()));
        exact.then(|| match row.get_ref(3) {
            Ok(ValueRef::Integer(cookie)) => Some(cookie),
            _ => None,
        })
    }

    /// Stores `digest` in migration `version`'s row (the newest), adding
    /// the column to a tracking table made by an older release first. Call
    /// only right after [`matches_exactly`](Self::matches_exactly) said
    /// yes, in the same transaction.
    pub(crate) fn stamp_digest(&self, conn: &Connection, version: i64, digest: &[u8; 16]) -> Result<()> {
        let what = || format!("recording the history's digest in `{}`", self.name);
        let stamped = conn
            .prepare_cached(&self.digest_stamp)
            .and_then(|mut s| s.execute(params![version, &digest[..]]))
            .is_ok();
        if !stamped {
            // An older release's table: the digest's column, and the schema
            // stamp's (which the digest's read reads too) when that is
            // missing as well.
            if let Err(e) = conn.execute_batch(&self.stamp_column)
                && !e.to_string().contains("duplicate column")
            {
                return Err(Error::db(what())(e));
            }
            conn.execute_batch(&self.digest_column).map_err(Error::db(what()))?;
            conn.prepare_cached(&self.digest_stamp)
                .and_then(|mut s| s.execute(params![version, &digest[..]]))
                .map_err(Error::db(what()))?;
        }
        Ok(())
    }

    /// Forgets every history digest: for a command that rewrites a row
    /// other than by applying or undoing the newest migration (`repair`).
    /// Nothing to do on a table without the column.
    pub(crate) fn clear_digests(&self, conn: &Connection) -> Result<()> {
        match conn.execute(&self.digest_clear, []) {
            Err(e) if e.to_string().contains("no such column") => Ok(()),
            other => other
                .map(drop)
                .map_err(Error::db(format!("clearing the history digests in `{}`", self.name))),
        }
    }

    /// SQLite's data version: "different if changes were committed to the
    /// database by any other connection in the interim", and unchanged by
    /// this connection's own commits (SQLite's documentation, "PRAGMA
    /// data_version"). Equal before a commit and after the next `BEGIN
    /// IMMEDIATE` means that no other process changed the history (or
    /// anything else) in between: the plan still holds.
    pub(crate) fn summary(&self, conn: &Connection) -> Result<i64> {
        // Not kept, as `insert`'s: the DDL between two reads expires it.
        conn.prepare(&self.summary)
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map_err(Error::db(format!("reading the tracking table `{}`", self.name)))
    }

    pub(crate) fn create(&self, conn: &Connection) -> Result<()> {
        conn.execute_batch(&self.create)
            .map_err(Error::db(format!("creating the tracking table `{}`", self.name)))
    }

    /// Gives the table an index on its smallest column, for the start-up's
    /// `count(*)` (`digest_read`): SQLite counts a table through the
    /// covering index with the shortest rows when it has one ("SCAN … USING
    /// COVERING INDEX" in `EXPLAIN QUERY PLAN`), and a row of this index
    /// takes about 9 bytes against about 115 for a tracking row: at 10,000
    /// migrations a start-up reads 22 pages instead of 279 (`dbstat`). Every
    /// connection parses the index with the schema and every tracking row
    /// is written to it too, which costs more than it saves on a short
    /// history: hence only from [`COUNT_INDEX_FROM`] migrations.
    ///
    /// It only saves time: when the name is taken (an object of the app's
    /// called `{table}_count`), the run goes on without it and start-ups
    /// count the table itself.
    pub(crate) fn count_index(&self, conn: &Connection) {
        let index = quote(&format!("{}_count", self.name));
        let _ = conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {index} ON {} (duration_ms)",
            quote(&self.name)
        ));
    }

    /// Whether the table has exactly the columns [`create`](Self::create)
    /// makes, in its order (an older release's table may lack the last
    /// ones, `store_down` adds one): then a row can be inserted without
    /// naming them (see [`insert`](Self::insert)).
    pub(crate) fn own_layout(&self, conn: &Connection) -> bool {
        const COLUMNS: [&str; 7] = [
            "version",
            "name",
            "checksum",
            "applied_at",
            "duration_ms",
            "schema_version",
            "history_digest",
        ];
        let mut at = 0;
        let mut same = true;
        let read = conn.pragma(None, "table_info", &self.name, |row| {
            same &= COLUMNS
                .get(at)
                .is_some_and(|c| row.get_ref(1).is_ok_and(|n| n.as_str() == Ok(*c)));
            at += 1;
            Ok(())
        });
        read.is_ok() && same && at == COLUMNS.len()
    }

    /// Records migration `version`, applied now. With `own_layout` (what
    /// [`own_layout`](Self::own_layout) said in this transaction), without
    /// naming the columns; should that fail, naming them.
    pub(crate) fn insert(
        &self,
        conn: &Connection,
        own_layout: bool,
        version: i64,
        name: &str,
        checksum: &crate::Checksum,
        duration_ms: i64,
    ) -> Result<()> {
        let checksum = checksum.hex();
        let now = applied_at(std::time::SystemTime::now());
        let row = params![version, name, checksum.as_str(), now.as_str(), duration_ms];
        // Prepared each time, not kept (`prepare_cached`): a migration's
        // DDL expires every statement, so a kept one is compiled again
        // anyway, and SQLite compiles a kept (persistent) statement
        // without its lookaside memory (see `digest_matches`): 12 k
        // instructions more per migration at N = 100 (callgrind).
        if own_layout
            && conn
                .prepare(&self.insert_values)
                .and_then(|mut s| s.execute(row))
                .is_ok()
        {
            return Ok(());
        }
        conn.prepare_cached(&self.insert)
            .and_then(|mut s| s.execute(row))
            .map(drop)
            .map_err(|e| {
                let msg = crate::error::message_of(&e);
                if msg.contains("has no column") || msg.contains("NOT NULL constraint") {
                    self.shape_error(msg)
                } else {
                    Error::db(format!("recording migration {version} in `{}`", self.name))(e)
                }
            })
    }

    /// Whether the schema is, byte for byte, the one the runtime verified
    /// right after migration `version` (its stamp equals SQLite's schema
    /// cookie): then the start-up drift check has nothing to read. `false`
    /// (look closer) without a stamp, or on a tracking table without the
    /// column (made by an older release).
    pub(crate) fn schema_unchanged(&self, conn: &Connection, version: u64) -> bool {
        let Ok(version) = i64::try_from(version) else {
            return false;
        };
        conn.prepare_cached(&self.unchanged)
            .and_then(|mut s| s.query_row([version], |r| r.get::<_, Option<bool>>(0)))
            .is_ok_and(|same| same == Some(true))
    }

    /// Stamps migration `version`'s row with SQLite's schema cookie, after
    /// the runtime verified that the schema is the one the migrations
    /// make (see [`schema_unchanged`](Self::schema_unchanged)); adds the
    /// column to a tracking table made by an older release first.
    pub(crate) fn stamp(&self, conn: &Connection, version: i64) -> Result<()> {
        let what = || format!("recording the schema's version in `{}`", self.name);
        let has_column = conn
            .prepare_cached(&self.stamp)
            .and_then(|mut s| s.execute([version]))
            .is_ok();
        if !has_column {
            // The cookie changes with the ALTER; the UPDATE reads it after.
            conn.execute_batch(&self.stamp_column).map_err(Error::db(what()))?;
            conn.prepare_cached(&self.stamp)
                .and_then(|mut s| s.execute([version]))
                .map_err(Error::db(what()))?;
        }
        Ok(())
    }

    pub(crate) fn delete(&self, conn: &Connection, version: i64) -> Result<()> {
        conn.prepare_cached(&self.delete)
            .and_then(|mut s| s.execute(params![version]))
            .map(drop)
            .map_err(Error::db(format!("removing migration {version} from `{}`", self.name)))
    }
}

#[cfg(feature = "rusqlite")]
impl crate::Migrator<'_> {
    /// After migration `m` was recorded (in its transaction): when it is
    /// the code's newest and the tracking table now holds exactly the
    /// code's migrations, stamps its row with the [`history_digest`], so
    /// that later start-ups verify the history by reading that one row.
    pub(crate) fn stamp_history_digest(&self, conn: &Connection, m: &crate::Migration) -> Result<()> {
        let newest = self.migrations.last().is_some_and(|last| last.version() == m.version());
        if newest && self.table.matches_exactly(conn, self.migrations) {
            self.table.stamp_digest(conn, m.version_i64(), &self.code_digest())?;
            if self.migrations.len() >= COUNT_INDEX_FROM {
                self.table.count_index(conn);
            }
        }
        Ok(())
    }

    /// Forgets the digest of the whole history that the newest tracking row
    /// may carry (the start-up's one-row check of the history): for a
    /// tool that rewrites a tracking row in place, as `cargo migrate
    /// repair` does with a checksum, so that the next start-up reads and
    /// verifies every row again. Applying and undoing migrations through
    /// this crate keep the digest right by themselves.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the table cannot be written.
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_runtime::{Migration, Migrator, Script, rusqlite::Connection};
    /// let migrations = [Migration::new(1, "t", Script::new("CREATE TABLE t (x);", "0001_t.sql"))];
    /// let mut conn = Connection::open_in_memory()?;
    /// let migrator = Migrator::new(&migrations);
    /// migrator.apply(&mut conn)?;
    /// migrator.forget_history_digest(&conn)?;
    /// assert!(migrator.pending(&conn)?.is_empty()); // still applied, verified row by row
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn forget_history_digest(&self, conn: &Connection) -> Result<()> {
        self.table.clear_digests(conn)
    }
}

#[cfg(all(test, feature = "rusqlite"))]
mod applied_at_tests {
    use std::time::{Duration, UNIX_EPOCH};

    use rusqlite::Connection;

    use super::applied_at;

    /// The same text as SQLite's `strftime`, which wrote the column before.
    #[test]
    fn applied_at_is_what_sqlite_writes() {
        let conn = Connection::open_in_memory().unwrap();
        let days = [
            0u64, 1, 58, 59, 365, 10_956, 11_016, 11_017, 11_322, 19_782, 20_424, 47_540, 47_541, 2_932_896,
        ];
        for day in days.into_iter().chain((0..40_000).step_by(97)) {
            for ms in [0u64, 1, 999, 59_999, 3_599_999, 43_200_123, 86_399_999] {
                let at = day * 86_400_000 + ms;
                // `%f` after a modifier that adds the milliseconds (SQLite
                // rounds it to whole milliseconds).
                let sqlite: String = conn
                    .query_row(
                        "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ?1 / 1000, 'unixepoch', \
                         printf('+%.3f seconds', (?1 % 1000) / 1000.0))",
                        [i64::try_from(at).unwrap()],
                        |r| r.get(0),
                    )
                    .unwrap();
                let ours = applied_at(UNIX_EPOCH + Duration::from_millis(at));
                assert_eq!(ours.as_str(), sqlite, "{at} ms");
            }
        }
        let now: String = conn
            .query_row("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')", [], |r| r.get(0))
            .unwrap();
        let ours = applied_at(std::time::SystemTime::now());
        assert_eq!(ours.as_str().len(), now.len());
        assert_eq!(
            ours.as_str()[..16],
            now[..16],
            "the same minute (or a minute boundary just passed)"
        );
        assert_eq!(
            applied_at(UNIX_EPOCH - Duration::from_secs(1)).as_str(),
            "1970-01-01T00:00:00.000Z"
        );
    }
}

#[cfg(all(test, feature = "rusqlite"))]
mod digest_tests {
    use rusqlite::Connection;

    use super::history_digest;
    use crate::{Error, Migration, Migrator, Script};

    fn set(specs: &[(u64, &str, &'static str)]) -> Vec<Migration> {
        specs
            .iter()
            .map(|&(v, name, sql)| Migration::new(v, name.to_owned(), Script::new(sql, format!("{v:04}_{name}.sql"))))
            .collect()
    }

    const BASE: [(u64, &str, &str); 3] = [
        (1, "a", "CREATE TABLE a (x);"),
        (2, "b", "CREATE TABLE b (x);"),
        (3, "c", "CREATE TABLE c (x);"),
    ];

    fn stored(conn: &Connection) -> Option<Vec<u8>> {
        conn.query_row(
            "SELECT history_digest FROM _migrations ORDER BY version DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn a_start_up_leaves_no_transaction_or_lock_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let ms = set(&BASE);
        Migrator::new(&ms).apply(&mut Connection::open(&path).unwrap()).unwrap();
        // Another connection in the middle of a write (a RESERVED lock, a
        // schema change not yet committed): the start-up reads past it.
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("BEGIN IMMEDIATE; CREATE TABLE other (x);")
            .unwrap();
        let mut conn = Connection::open(&path).unwrap();
        assert!(Migrator::new(&ms).apply(&mut conn).unwrap().is_empty());
        assert!(conn.is_autocommit(), "the start-up's read transaction is ended");
        // A read lock left behind would make this commit fail (SQLITE_BUSY).
        writer.execute_batch("COMMIT").unwrap();
        // The connection's schema, loaded inside the start-up's read
        // transaction, is reloaded once another connection changed it.
        assert!(Migrator::new(&ms).apply(&mut conn).unwrap().is_empty());
        conn.execute("INSERT INTO other VALUES (1)", []).unwrap();
    }

    #[test]
    fn the_digest_changes_with_any_version_name_checksum_or_count() {
        let base = history_digest(&set(&BASE));
        let variants: [&[(u64, &str, &'static str)]; 6] = [
            &[BASE[0], BASE[1], (3, "c", "CREATE TABLE c (y);")],
            &[BASE[0], BASE[1], (3, "d", "CREATE TABLE c (x);")],
            &[BASE[0], BASE[1], (4, "c", "CREATE TABLE c (x);")],
            &[BASE[0], BASE[1]],
            &[BASE[0], BASE[2]],
            &[BASE[0], BASE[1], BASE[2], (4, "d", "CREATE TABLE d (x);")],
        ];
        for v in variants {
            assert_ne!(history_digest(&set(v)), base, "{v:?}");
        }
        assert_eq!(history_digest(&set(&BASE)), base, "the same history, the same digest");
    }

    #[test]
    fn applying_the_newest_stamps_the_digest_and_a_start_up_trusts_only_an_exact_match() {
        let ms = set(&BASE);
        let mut conn = Connection::open_in_memory().unwrap();
        Migrator::new(&ms[..2]).apply(&mut conn).unwrap();
        let two = stored(&conn).expect("stamped after the newest of two");
        Migrator::new(&ms).apply(&mut conn).unwrap();
        let three = stored(&conn).expect("stamped after the newest of three");
        assert_ne!(two, three);
        assert_eq!(three, history_digest(&ms).to_vec());
        let m = Migrator::new(&ms);
        assert!(m.table.digest_matches(&conn, &ms, &history_digest(&ms)).is_some());
        // A row added below the newest (by hand, or another tool): the
        // count no longer matches, so the one-row check says "look closer".
        conn.execute_batch("INSERT INTO _migrations (version, name, checksum, applied_at, duration_ms) SELECT 0, 'z', checksum, applied_at, 0 FROM _migrations WHERE version = 1").unwrap();
        assert!(m.table.digest_matches(&conn, &ms, &history_digest(&ms)).is_none());
        conn.execute_batch("DELETE FROM _migrations WHERE version = 0").unwrap();
        assert!(m.table.digest_matches(&conn, &ms, &history_digest(&ms)).is_some());
        m.forget_history_digest(&conn).unwrap();
        assert_eq!(stored(&conn), None);
        assert!(m.table.digest_matches(&conn, &ms, &history_digest(&ms)).is_none());
        assert!(
            m.apply(&mut conn).unwrap().is_empty(),
            "still up to date, verified row by row"
        );
    }

    /// The five refusals of a start-up hold on a database whose newest row
    /// carries a digest: edited, renamed, missing, database ahead, and a
    /// late lower version.
    #[test]
    fn every_refusal_holds_when_the_history_carries_a_digest() {
        let fresh = |specs: &[(u64, &str, &'static str)]| {
            let mut conn = Connection::open_in_memory().unwrap();
            Migrator::new(&set(specs)).apply(&mut conn).unwrap();
            assert!(stored(&conn).is_some());
            conn
        };
        let refused = |conn: &mut Connection, code: &[(u64, &str, &'static str)]| {
            Migrator::new(&set(code)).apply(conn).unwrap_err()
        };

        let mut conn = fresh(&BASE);
        let e = refused(&mut conn, &[BASE[0], (2, "b", "CREATE TABLE b (y);"), BASE[2]]);
        assert!(matches!(e, Error::Modified { version: 2, .. }), "{e}");
        let e = refused(&mut conn, &[BASE[0], (2, "bee", "CREATE TABLE b (x);"), BASE[2]]);
        assert!(matches!(e, Error::Renamed { version: 2, .. }), "{e}");
        let e = refused(&mut conn, &[BASE[0], BASE[2]]);
        assert!(matches!(e, Error::UnknownApplied { .. }), "missing: {e}");
        let e = refused(&mut conn, &BASE[..2]);
        assert!(matches!(e, Error::UnknownApplied { .. }), "database ahead: {e}");

        let mut conn = fresh(&[BASE[0], BASE[2]]);
        let e = refused(&mut conn, &BASE);
        assert!(
            matches!(e, Error::OutOfOrder { version: 2, .. }),
            "late lower version: {e}"
        );
    }

    /// A tracking table made by a release without the digest gets the
    /// column with its next migration, in that migration's transaction.
    #[test]
    fn an_older_release_table_gets_the_column_with_its_next_migration() {
        let ms = set(&BASE);
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE _migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL, duration_ms INTEGER NOT NULL);
             CREATE TABLE a (x); CREATE TABLE b (x);",
        )
        .unwrap();
        for m in &ms[..2] {
            conn.execute(
                "INSERT INTO _migrations VALUES (?1, ?2, ?3, '2026-01-01T00:00:00.000Z', 1)",
                rusqlite::params![m.version_i64(), m.name(), m.checksum().to_string()],
            )
            .unwrap();
        }
        let m = Migrator::new(&ms[..2]);
        assert!(
            m.apply(&mut conn).unwrap().is_empty(),
            "an older release's table is read as before"
        );
        let m = Migrator::new(&ms);
        assert_eq!(m.apply(&mut conn).unwrap().applied().count(), 1);
        assert_eq!(stored(&conn), Some(history_digest(&ms).to_vec()));
        assert!(m.table.digest_matches(&conn, &ms, &history_digest(&ms)).is_some());
    }
    /// The default table's statements are formatted once per process,
    /// also when the generated `migrator()` names the table.
    #[test]
    fn the_default_table_is_shared_however_it_is_named() {
        let ms = set(&BASE);
        let a = Migrator::new(&ms);
        let b = Migrator::new(&ms).table("_migrations");
        assert!(std::sync::Arc::ptr_eq(&a.table, &b.table));
        let other = Migrator::new(&ms).table("other");
        assert!(!std::sync::Arc::ptr_eq(&a.table, &other.table));
        assert_eq!(other.table.name, "other");
    }

    /// From `COUNT_INDEX_FROM` migrations the table has an index that
    /// SQLite counts through; the one-row check still sees a row deleted
    /// by hand, the drift check does not see the index, and an app's
    /// object with the index's name does not stop a run.
    #[test]
    fn a_long_history_is_counted_through_an_index() {
        use super::COUNT_INDEX_FROM;
        let many = |first: &'static str| -> Vec<Migration> {
            (1..=COUNT_INDEX_FROM as u64)
                .map(|v| {
                    let sql: &'static str = if v == 1 { first } else { "SELECT 1;" };
                    Migration::new(v, format!("m{v}"), Script::new(sql, format!("{v:04}_m{v}.sql")))
                })
                .collect()
        };
        let has_index = |conn: &Connection| -> bool {
            conn.query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = '_migrations_count'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
                == 1
        };
        let ms = many("CREATE TABLE t (x);");
        let mut conn = Connection::open_in_memory().unwrap();
        Migrator::new(&ms[..ms.len() - 1]).apply(&mut conn).unwrap();
        assert!(!has_index(&conn), "one migration short of the threshold: no index");
        let m = Migrator::new(&ms);
        let filter = crate::model::Filter::new("_migrations");
        let before = crate::model::fingerprint(&conn, &filter).unwrap();
        m.apply(&mut conn).unwrap();
        assert!(has_index(&conn), "made with the migration that reached it");
        assert_eq!(
            crate::model::fingerprint(&conn, &filter).unwrap(),
            before,
            "the drift check leaves the index out"
        );
        let plans: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", m.table.digest_read))
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plans.iter().any(|p| p.contains("COVERING INDEX _migrations_count")),
            "{plans:?}"
        );
        assert!(m.table.digest_matches(&conn, &ms, &history_digest(&ms)).is_some());
        conn.execute_batch("DELETE FROM _migrations WHERE version = 7").unwrap();
        assert!(
            m.table.digest_matches(&conn, &ms, &history_digest(&ms)).is_none(),
            "a row deleted by hand is counted"
        );

        // The name taken by the app: the run goes on without the index.
        let ms = many("CREATE TABLE _migrations_count (x);");
        let mut conn = Connection::open_in_memory().unwrap();
        let m = Migrator::new(&ms);
        assert_eq!(m.apply(&mut conn).unwrap().applied().count(), COUNT_INDEX_FROM);
        assert!(!has_index(&conn));
        assert!(m.apply(&mut conn).unwrap().is_empty());
        assert!(m.table.digest_matches(&conn, &ms, &history_digest(&ms)).is_some());
    }
}

/// SQLite's schema cookie now (`PRAGMA schema_version`), which SQLite
/// changes with every change to the schema: a pragma statement, which
/// prepares without connecting the `pragma_schema_version` virtual table
/// (SQLite's documentation, "PRAGMA schema_version").
#[cfg(feature = "rusqlite")]
pub(crate) fn schema_cookie(conn: &Connection) -> Option<i64> {
    // Once per start-up: not kept (see `Table::digest_matches`).
    conn.prepare("PRAGMA schema_version")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .ok()
}
