//! The tracking table: which migrations a database has applied.

#[cfg(feature = "rusqlite")]
use rusqlite::{Connection, OptionalExtension, params};

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

/// The table's SQL text, for the statements that name it.
#[cfg_attr(not(feature = "rusqlite"), allow(dead_code))]
pub(crate) struct Table {
    pub(crate) name: String,
    select: String,
    insert: String,
    delete: String,
    create: String,
    summary: String,
    compact: String,
    unchanged: String,
    stamp: String,
    stamp_column: String,
}

impl Table {
    pub(crate) fn new(name: &str) -> Self {
        let q = quote(name);
        Self {
            name: name.to_owned(),
            select: format!("SELECT version, name, checksum, applied_at, duration_ms FROM {q} ORDER BY version"),
            insert: format!(
                "INSERT INTO {q} (version, name, checksum, applied_at, duration_ms) \
                 VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?4)"
            ),
            delete: format!("DELETE FROM {q} WHERE version = ?1"),
            create: format!(
                "CREATE TABLE IF NOT EXISTS {q} (\n    \
                 version INTEGER PRIMARY KEY,\n    \
                 name TEXT NOT NULL,\n    \
                 checksum TEXT NOT NULL,\n    \
                 applied_at TEXT NOT NULL,\n    \
                 duration_ms INTEGER NOT NULL\n)"
            ),
            // data_version changes when another connection commits; max()
            // reads one end of the primary key. Neither scans the table.
            summary: format!("SELECT (SELECT data_version FROM pragma_data_version), (SELECT max(version) FROM {q})"),
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
        let Ok(mut stmt) = conn.prepare_cached(&self.compact) else {
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

    /// SQLite's data version (it changes when another connection commits)
    /// and the highest version: a cheap way to see whether another process
    /// changed the history since we last read it.
    pub(crate) fn summary(&self, conn: &Connection) -> Result<(i64, Option<u64>)> {
        conn.prepare_cached(&self.summary)
            .and_then(|mut s| {
                s.query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)))
                    .optional()
            })
            .map_err(Error::db(format!("reading the tracking table `{}`", self.name)))
            .map(|row| {
                let (data_version, max) = row.unwrap_or((0, None));
                (data_version, max.and_then(|m| u64::try_from(m).ok()))
            })
    }

    pub(crate) fn create(&self, conn: &Connection) -> Result<()> {
        conn.execute_batch(&self.create)
            .map_err(Error::db(format!("creating the tracking table `{}`", self.name)))
    }

    pub(crate) fn insert(
        &self,
        conn: &Connection,
        version: i64,
        name: &str,
        checksum: &str,
        duration_ms: i64,
    ) -> Result<()> {
        conn.prepare_cached(&self.insert)
            .and_then(|mut s| s.execute(params![version, name, checksum, duration_ms]))
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
