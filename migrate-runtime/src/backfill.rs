//! Batched backfills (`-- migrate:batch N`): one `UPDATE … WHERE …` run
//! over ranges of the table's key, one short transaction per range, each
//! recording how far it got, so other writers get the database between
//! batches and an interrupted run resumes after its last committed batch.
//!
//! The statement is read here ([`Backfill::parse`], which the build's
//! check uses too); the loop ([`run`]) is written once against
//! [`Batches`], which SQLite (rowid ranges) and PostgreSQL (ranges of an
//! integer primary key) implement.

use std::time::{Duration, Instant};

use crate::{Error, Event, Migration, Migrator, Result, Script};

/// The one `UPDATE … WHERE …` statement of a batched migration, split
/// where the runner adds its key range.
///
/// # Examples
///
/// ```
/// use migrate_runtime::Backfill;
///
/// let b = Backfill::parse("-- fill the new column\nUPDATE users AS u SET email_lower = lower(email) WHERE email_lower IS NULL;").unwrap();
/// assert_eq!((b.table(), b.qualifier(), b.condition(), b.line()), ("users", "u", "email_lower IS NULL", 2));
/// let e = Backfill::parse("DELETE FROM users WHERE banned;").unwrap_err();
/// assert!(e.message.contains("DELETE"), "{}", e.message);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backfill<'a> {
    /// The statement up to and including its `WHERE`.
    head: &'a str,
    /// What follows `WHERE`, without the final `;`.
    condition: &'a str,
    /// The table, as written (quoted or qualified).
    table: &'a str,
    /// The alias, or the table: what qualifies the key column.
    qualifier: &'a str,
    /// The statement's line in the file.
    line: usize,
}

/// Why a script cannot run as a batched backfill ([`Backfill::parse`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotBatchable {
    /// The 1-based line it is about (1 when the script has no statement).
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: &'static str,
}

/// The hint for a statement that is not one `UPDATE … WHERE …`.
const ONE_UPDATE: &str = "a batched migration is one `UPDATE table SET … WHERE …` statement; put other statements in a migration of their own, without `-- migrate:batch`";

impl<'a> Backfill<'a> {
    /// Reads `sql`, which must be one `UPDATE table [AS alias] SET … [FROM
    /// …] WHERE condition` statement, with nothing after the condition
    /// (no `RETURNING`, `ORDER BY`, `LIMIT`, nor `WHERE CURRENT OF`).
    ///
    /// # Errors
    ///
    /// What is wrong, the line, and a hint.
    pub fn parse(sql: &'a str) -> std::result::Result<Self, NotBatchable> {
        let statements = crate::sql::statements(sql);
        let not = |line: usize, message: String, hint: &'static str| NotBatchable { line, message, hint };
        let Some(first) = statements.first() else {
            return Err(not(1, "the file has no statement".into(), ONE_UPDATE));
        };
        if let Some(tx) = statements.iter().find(|s| {
            let word = s
                .text
                .split(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or_default();
            ["begin", "commit", "end", "rollback", "savepoint", "release"]
                .iter()
                .any(|w| w.eq_ignore_ascii_case(word))
        }) {
            return Err(not(
                tx.line,
                format!(
                    "`{}` in a batched migration",
                    first_words(tx.text).trim_end_matches(';')
                ),
                "remove BEGIN and COMMIT: the runner makes each batch a transaction of its own",
            ));
        }
        if let Some(second) = statements.get(1) {
            return Err(not(
                second.line,
                format!(
                    "a second statement (`{}`): a batched migration runs exactly one UPDATE",
                    first_words(second.text)
                ),
                ONE_UPDATE,
            ));
        }
        let text = first.text;
        let toks = tokens(text);
        let at = |i: usize| crate::sql::line_at(sql, first.offset + toks.get(i).map_or(0, |t| t.start));
        let word = |i: usize, kw: &str| {
            toks.get(i)
                .is_some_and(|t| t.word && text[t.start..t.end].eq_ignore_ascii_case(kw))
        };
        if !word(0, "update") {
            return Err(not(
                first.line,
                format!("the statement is `{}`, not an UPDATE", first_words(text)),
                ONE_UPDATE,
            ));
        }
        let mut i = 1;
        if word(i, "or") {
            i += 2; // UPDATE OR IGNORE (SQLite)
        } else if word(i, "only") {
            i += 1; // UPDATE ONLY (PostgreSQL)
        }
        let table_start = i;
        while toks.get(i + 1).is_some_and(|t| t.punct(text) == Some('.')) {
            i += 2;
        }
        let Some(table_end) = toks.get(i).filter(|t| t.name).map(|t| t.end) else {
            return Err(not(at(i), "the UPDATE names no table".into(), ONE_UPDATE));
        };
        let table = &text[toks[table_start].start..table_end];
        i += 1;
        if toks.get(i).is_some_and(|t| t.punct(text) == Some('*')) {
            i += 1;
        }
        let mut qualifier = table;
        if word(i, "as") {
            i += 1;
        }
        if !word(i, "set")
            && let Some(alias) = toks.get(i).filter(|t| t.name)
        {
            qualifier = &text[alias.start..alias.end];
            i += 1;
        }
        if !word(i, "set") {
            return Err(not(
                at(i),
                format!("expected SET after `UPDATE {table}`"),
                "write `UPDATE table [AS alias] SET column = value WHERE condition` (no INDEXED BY)",
            ));
        }
        let Some(w) = (i..toks.len()).find(|&j| toks[j].depth == 0 && word(j, "where")) else {
            return Err(not(
                first.line,
                "the UPDATE has no WHERE clause".into(),
                "add `WHERE <the rows still to fill>` (e.g. `WHERE email_lower IS NULL`): a batched backfill updates the rows its WHERE selects, range by range",
            ));
        };
        if word(w + 1, "current") {
            return Err(not(
                at(w),
                "`WHERE CURRENT OF` names a cursor, not rows".into(),
                ONE_UPDATE,
            ));
        }
        if let Some(j) = (w + 1..toks.len())
            .find(|&j| toks[j].depth == 0 && ["returning", "order", "limit"].iter().any(|kw| word(j, kw)))
        {
            return Err(not(
                at(j),
                format!(
                    "`{}` after the WHERE clause",
                    text[toks[j].start..toks[j].end].to_ascii_uppercase()
                ),
                "the runner chooses the rows of each batch by key range: remove RETURNING, ORDER BY and LIMIT",
            ));
        }
        let head = &text[..toks[w].end];
        let condition = text[toks[w].end..].trim();
        let condition = condition.strip_suffix(';').unwrap_or(condition).trim_end();
        if condition.is_empty() {
            return Err(not(at(w), "the WHERE clause is empty".into(), ONE_UPDATE));
        }
        Ok(Self {
            head,
            condition,
            table,
            qualifier,
            line: first.line,
        })
    }

    /// The table the statement updates, as written.
    pub fn table(&self) -> &'a str {
        self.table
    }

    /// What qualifies the key column: the alias, else the table.
    pub fn qualifier(&self) -> &'a str {
        self.qualifier
    }

    /// The `WHERE` condition, as written.
    pub fn condition(&self) -> &'a str {
        self.condition
    }

    /// The statement's 1-based line in its file.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The statement limited to the keys in `lo < key <= hi` (`lo` and
    /// `hi` are SQL: parameters or literals). The condition is
    /// parenthesized on lines of its own, so a trailing comment in it
    /// cannot swallow the range.
    pub(crate) fn ranged(&self, key: &str, lo: &str, hi: &str) -> String {
        let k = format!("{}.{key}", self.qualifier);
        format!("{} (\n{}\n) AND {k} > {lo} AND {k} <= {hi}", self.head, self.condition)
    }
}

/// The first two words of a statement, for messages.
fn first_words(text: &str) -> String {
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// One token: where it is, its parenthesis depth, and whether it is a
/// bare word or a name (bare or quoted).
struct Tok {
    start: usize,
    end: usize,
    depth: usize,
    word: bool,
    name: bool,
}

impl Tok {
    fn punct(&self, text: &str) -> Option<char> {
        (!self.name && self.end == self.start + 1).then(|| char::from(text.as_bytes()[self.start]))
    }
}

/// The tokens of one statement, comments and strings skipped (PostgreSQL's
/// `$tag$…$tag$` strings too).
fn tokens(text: &str) -> Vec<Tok> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut depth) = (0, 0usize);
    while i < b.len() {
        let c = b[i];
        let start = i;
        let (word, name) = match c {
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..].iter().position(|&x| x == b'\n').map_or(b.len(), |p| i + p);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(b.len(), |p| i + p + 4);
                continue;
            }
            b'\'' => {
                i = crate::model::closing_quote(b, i) + 1;
                (false, false)
            }
            b'"' | b'`' | b'[' => {
                i = crate::model::closing_quote(b, i) + 1;
                (false, true)
            }
            b'$' if dollar_tag(&b[i..]).is_some() => {
                let tag = &text[i..i + dollar_tag(&b[i..]).unwrap_or(1)];
                i = text[i + tag.len()..]
                    .find(tag)
                    .map_or(b.len(), |p| i + 2 * tag.len() + p);
                (false, false)
            }
            _ if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80) {
                    i += 1;
                }
                let digit = c.is_ascii_digit();
                (!digit, !digit)
            }
            b'(' => {
                depth += 1;
                i += 1;
                (false, false)
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
                out.push(Tok {
                    start,
                    end: i,
                    depth,
                    word: false,
                    name: false,
                });
                continue;
            }
            _ => {
                i += text[i..].chars().next().map_or(1, char::len_utf8);
                (false, false)
            }
        };
        let depth = if c == b'(' { depth - 1 } else { depth };
        out.push(Tok {
            start,
            end: i.min(b.len()),
            depth,
            word,
            name,
        });
    }
    out
}

/// The length of the `$tag$` opening a PostgreSQL dollar-quoted string at
/// the start of `b`, if one does.
fn dollar_tag(b: &[u8]) -> Option<usize> {
    let end = b[1..].iter().position(|&x| !(x.is_ascii_alphanumeric() || x == b'_'))? + 1;
    (b[end] == b'$' && !b.get(1).is_some_and(u8::is_ascii_digit)).then_some(end + 1)
}

/// Where a backfill starts: the key walked, where it ends, and what
/// earlier runs did.
#[derive(Clone, Debug, Default)]
pub(crate) struct Start {
    /// Rows walked, rows updated and batches committed by earlier runs.
    pub(crate) walked: u64,
    pub(crate) updated: u64,
    pub(crate) batches: u64,
    /// Rows left to walk (keys above the progress, up to the end).
    pub(crate) remaining: u64,
    /// The largest key when this run started: the last batch ends there.
    pub(crate) end: Option<i64>,
    /// The key column, as SQL.
    pub(crate) key: String,
}

/// One committed batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Batch {
    /// Rows of the key range.
    pub(crate) walked: u64,
    /// Rows the UPDATE changed.
    pub(crate) updated: u64,
}

/// What a backend does for a batched backfill. Each batch is one
/// transaction that reads the progress, finds the next `size` keys,
/// updates them and records the new progress, so a run killed at any
/// point leaves the progress of its last committed batch, and two
/// processes running the backfill at once never update a range twice.
pub(crate) trait Batches {
    /// Whether to pause after each batch for as long as it held the
    /// database (SQLite, where a batch keeps every other writer out).
    const PAUSE: bool;

    /// Outside a transaction: creates the progress table if needed, finds
    /// the key to walk (or refuses the table), and reads the progress.
    async fn backfill_start(&mut self, migrator: &Migrator<'_>, m: &Migration, plan: &Backfill<'_>) -> Result<Start>;

    /// Runs the next batch of at most `size` keys in a transaction of its
    /// own, committed with its progress; `None` when no key is left.
    async fn backfill_batch(
        &mut self,
        migrator: &Migrator<'_>,
        m: &Migration,
        plan: &Backfill<'_>,
        start: &Start,
        size: u64,
    ) -> Result<Option<Batch>>;

    /// Pauses between batches.
    async fn backfill_pause(&mut self, pause: Duration);
}

/// The name of the progress table of the tracking table `tracking`:
/// `{tracking}_backfill`, one row per batched migration in progress
/// (deleted with the tracking row that records it applied).
pub(crate) fn progress_table(tracking: &str) -> String {
    format!("{tracking}_backfill")
}

/// Whether `name` is the progress table of tracking table `tracking`
/// (schema models leave it out, as they leave the tracking table out).
#[cfg_attr(not(any(feature = "rusqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn is_progress_table(name: &[u8], tracking: &str) -> bool {
    name.len() == tracking.len() + 9
        && name[..tracking.len()].eq_ignore_ascii_case(tracking.as_bytes())
        && name[tracking.len()..].eq_ignore_ascii_case(b"_backfill")
}

/// Runs `script`, a `-- migrate:batch size` script, batch by batch,
/// reporting each through [`Event::Backfill`].
pub(crate) async fn run<B: Batches>(
    db: &mut B,
    migrator: &Migrator<'_>,
    m: &Migration,
    script: &Script,
    size: u64,
) -> Result<()> {
    let refuse = |line: usize, message: String, hint: String| Error::Batch {
        version: m.version(),
        name: m.name().to_owned(),
        file: script.file().to_owned(),
        line,
        message,
        hint,
    };
    let plan = Backfill::parse(script.sql()).map_err(|e| refuse(e.line, e.message, e.hint.to_owned()))?;
    let start = db.backfill_start(migrator, m, &plan).await?;
    let (mut done, mut updated, mut batches) = (start.walked, start.updated, start.batches);
    let total = done + start.remaining;
    let began = Instant::now();
    let mut this_run = 0u64;
    let event = |done, updated, batches, this_run: u64| Event::Backfill {
        migration: m,
        rows_done: done,
        rows_total: total.max(done),
        rows_updated: updated,
        batches,
        #[allow(clippy::cast_precision_loss)]
        rate: this_run as f64 / began.elapsed().as_secs_f64().max(1e-9),
    };
    migrator.notify(event(done, updated, batches, 0));
    loop {
        let t = Instant::now();
        let Some(batch) = db.backfill_batch(migrator, m, &plan, &start, size).await? else {
            return Ok(());
        };
        let held = t.elapsed();
        done += batch.walked;
        this_run += batch.walked;
        updated += batch.updated;
        batches += 1;
        migrator.notify(event(done, updated, batches, this_run));
        if B::PAUSE {
            db.backfill_pause(held.min(PAUSE_CAP)).await;
        }
    }
}

/// The longest pause between two batches.
const PAUSE_CAP: Duration = Duration::from_millis(200);

/// The refusal of a table the backfill cannot walk in key ranges.
pub(crate) fn unwalkable(m: &Migration, script: &Script, plan: &Backfill<'_>, message: String, hint: &str) -> Error {
    Error::Batch {
        version: m.version(),
        name: m.name().to_owned(),
        file: script.file().to_owned(),
        line: plan.line(),
        message,
        hint: hint.to_owned(),
    }
}

#[cfg(feature = "rusqlite")]
mod sqlite {
    use std::time::Duration;

    use rusqlite::{Connection, OptionalExtension};

    use super::{Backfill, Batch, Batches, Start, progress_table, unwalkable};
    use crate::Script;
    use crate::history::quote;
    use crate::session::Sqlite;
    use crate::{Error, Migration, Migrator, Result};

    /// The error of a statement of the backfill that failed, at the
    /// statement's line.
    fn failed(
        m: &Migration,
        script: &Script,
        plan: &Backfill<'_>,
        statement: String,
        message: String,
        code: Option<rusqlite::ErrorCode>,
    ) -> Error {
        Error::Sql {
            direction: crate::Direction::Up,
            version: m.version(),
            name: m.name().to_owned(),
            file: script.file().to_owned(),
            line: plan.line(),
            statement,
            message,
            code,
            rolled_back: false,
        }
    }

    /// The progress table's columns.
    const COLUMNS: &str = "(version INTEGER PRIMARY KEY, last_key INTEGER NOT NULL, rows_walked INTEGER NOT NULL, \
                           rows_updated INTEGER NOT NULL, batches INTEGER NOT NULL, updated_at TEXT NOT NULL)";

    fn count(n: i64) -> u64 {
        u64::try_from(n).unwrap_or(0)
    }

    impl Sqlite<'_, '_> {
        fn sql_error(&self, m: &Migration, plan: &Backfill<'_>, statement: &str, e: &rusqlite::Error) -> Error {
            failed(
                m,
                m.up(),
                plan,
                statement.to_owned(),
                crate::error::message_of(e),
                e.sqlite_error_code(),
            )
        }
    }

    /// Whether `m` is recorded as applied: by another process that ran
    /// the same backfill at the same time (SQLite has no lock that
    /// outlives a transaction, so two migrators can share one backfill).
    pub(crate) fn recorded(conn: &Connection, migrator: &Migrator<'_>, m: &Migration) -> Result<bool> {
        conn.prepare_cached(&format!(
            "SELECT 1 FROM {} WHERE version = ?1",
            quote(&migrator.table.name)
        ))
        .and_then(|mut s| s.exists([m.version_i64()]))
        .map_err(Error::db(format!(
            "reading the tracking table `{}`",
            migrator.table.name
        )))
    }

    /// Deletes the progress row of `m` (recorded applied now), when the
    /// progress table exists.
    pub(crate) fn forget(conn: &Connection, migrator: &Migrator<'_>, m: &Migration) -> Result<()> {
        let table = progress_table(&migrator.table.name);
        let exists = conn
            .query_row(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [&table],
                |_| Ok(()),
            )
            .optional()
            .map_err(Error::db("reading the schema"))?;
        if exists.is_some() {
            conn.execute(
                &format!("DELETE FROM {} WHERE version = ?1", quote(&table)),
                [m.version_i64()],
            )
            .map_err(Error::db(format!(
                "clearing the progress of migration {} in `{table}`",
                m.version()
            )))?;
        }
        Ok(())
    }

    impl Batches for Sqlite<'_, '_> {
        const PAUSE: bool = true;

        async fn backfill_start(
            &mut self,
            migrator: &Migrator<'_>,
            m: &Migration,
            plan: &Backfill<'_>,
        ) -> Result<Start> {
            let conn = self.conn();
            let progress = quote(&progress_table(&migrator.table.name));
            conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {progress} {COLUMNS}"))
                .map_err(Error::db(format!("creating the backfill progress table {progress}")))?;
            let table = plan.table();
            let probe = format!("SELECT max(rowid) FROM {table}");
            let end: Option<i64> = match conn.query_row(&probe, [], |r| r.get(0)) {
                Ok(end) => end,
                Err(e) if crate::error::message_of(&e).contains("no such column: rowid") => {
                    return Err(unwalkable(
                        m,
                        m.up(),
                        plan,
                        format!("`{table}` is a WITHOUT ROWID table: there is no rowid to walk in ranges"),
                        "run this UPDATE without `-- migrate:batch` (in one transaction), or batch it by hand in migrations of its own",
                    ));
                }
                Err(e) => return Err(self.sql_error(m, plan, &probe, &e)),
            };
            let row: Option<(i64, i64, i64, i64)> = conn
                .query_row(
                    &format!("SELECT last_key, rows_walked, rows_updated, batches FROM {progress} WHERE version = ?1"),
                    [m.version_i64()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(Error::db(format!("reading the backfill progress in {progress}")))?;
            let (lo, walked, updated, batches) = row.unwrap_or((i64::MIN, 0, 0, 0));
            let remaining = format!("SELECT count(*) FROM {table} WHERE rowid > ?1 AND rowid <= ?2");
            let remaining: i64 = conn
                .query_row(&remaining, [lo, end.unwrap_or(i64::MIN)], |r| r.get(0))
                .map_err(|e| self.sql_error(m, plan, &remaining, &e))?;
            Ok(Start {
                walked: count(walked),
                updated: count(updated),
                batches: count(batches),
                remaining: count(remaining),
                end,
                key: "rowid".to_owned(),
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
            let conn = self.conn();
            let progress = quote(&progress_table(&migrator.table.name));
            let mut tx = self.session().begin_batch()?;
            // Another process finished this backfill and recorded it (its
            // progress row is gone with it): nothing is left.
            if recorded(conn, migrator, m)? {
                tx.rollback()?;
                return Ok(None);
            }
            let lo: i64 = conn
                .prepare_cached(&format!("SELECT last_key FROM {progress} WHERE version = ?1"))
                .and_then(|mut s| s.query_row([m.version_i64()], |r| r.get(0)).optional())
                .map_err(Error::db(format!("reading the backfill progress in {progress}")))?
                .unwrap_or(i64::MIN);
            let next = format!(
                "SELECT max(k), count(*) FROM (SELECT rowid AS k FROM {} WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid LIMIT ?3)",
                plan.table()
            );
            let (hi, walked): (Option<i64>, i64) = conn
                .prepare_cached(&next)
                .and_then(|mut s| {
                    s.query_row((lo, end, i64::try_from(size).unwrap_or(i64::MAX)), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                })
                .map_err(|e| self.sql_error(m, plan, &next, &e))?;
            let Some(hi) = hi else {
                tx.rollback()?;
                return Ok(None);
            };
            let update = plan.ranged(&start.key, "?1", "?2");
            let updated = conn
                .prepare_cached(&update)
                .and_then(|mut s| s.execute((lo, hi)))
                .map_err(|e| self.sql_error(m, plan, &update, &e))?;
            let updated = u64::try_from(updated).unwrap_or(u64::MAX);
            conn.prepare_cached(&format!(
                "INSERT INTO {progress} (version, last_key, rows_walked, rows_updated, batches, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) \
                 ON CONFLICT (version) DO UPDATE SET last_key = excluded.last_key, \
                 rows_walked = rows_walked + excluded.rows_walked, rows_updated = rows_updated + excluded.rows_updated, \
                 batches = batches + 1, updated_at = excluded.updated_at"
            ))
            .and_then(|mut s| s.execute((m.version_i64(), hi, walked, i64::try_from(updated).unwrap_or(i64::MAX))))
            .map_err(Error::db(format!("recording the backfill progress in {progress}")))?;
            tx.commit()?;
            Ok(Some(Batch {
                walked: count(walked),
                updated,
            }))
        }

        async fn backfill_pause(&mut self, pause: Duration) {
            std::thread::sleep(pause);
        }
    }
}
#[cfg(feature = "rusqlite")]
pub(crate) use sqlite::{forget, recorded};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_update() {
        let b = Backfill::parse(
            "UPDATE OR IGNORE main.t SET n = n + 1 WHERE (a = 1) OR b IN (SELECT x FROM y WHERE z) -- why\n;",
        )
        .unwrap();
        assert_eq!((b.table(), b.qualifier()), ("main.t", "main.t"));
        assert_eq!(b.condition(), "(a = 1) OR b IN (SELECT x FROM y WHERE z) -- why");
        assert_eq!(
            b.ranged("rowid", "?1", "?2"),
            "UPDATE OR IGNORE main.t SET n = n + 1 WHERE (\n(a = 1) OR b IN (SELECT x FROM y WHERE z) -- why\n) AND main.t.rowid > ?1 AND main.t.rowid <= ?2"
        );
        let b = Backfill::parse("update \"Big Table\" x set v = 'where' from s where s.id = x.id").unwrap();
        assert_eq!(
            (b.table(), b.qualifier(), b.condition()),
            ("\"Big Table\"", "x", "s.id = x.id")
        );
        let b = Backfill::parse("UPDATE ONLY t SET v = $$ where $$ WHERE v IS NULL;").unwrap();
        assert_eq!(b.condition(), "v IS NULL");
    }

    #[test]
    fn refuses_what_is_not_one_update() {
        let bad = [
            ("", 1, "no statement"),
            (
                "UPDATE t SET a = 1 WHERE b;\nUPDATE t SET c = 2 WHERE d;",
                2,
                "a second statement (`UPDATE t`)",
            ),
            (
                "BEGIN;\nUPDATE t SET a = 1 WHERE b;\nCOMMIT;",
                1,
                "`BEGIN` in a batched migration",
            ),
            ("DELETE FROM t WHERE a;", 1, "`DELETE FROM`, not an UPDATE"),
            ("UPDATE t SET a = 1;", 1, "no WHERE clause"),
            ("UPDATE t SET a = (SELECT 1 WHERE 1);", 1, "no WHERE clause"),
            (
                "UPDATE t SET a = 1 WHERE b\nRETURNING a;",
                2,
                "`RETURNING` after the WHERE",
            ),
            (
                "UPDATE t SET a = 1 WHERE b ORDER BY c LIMIT 5;",
                1,
                "`ORDER` after the WHERE",
            ),
            (
                "UPDATE t INDEXED BY i SET a = 1 WHERE b;",
                1,
                "expected SET after `UPDATE t`",
            ),
            ("UPDATE t SET a = 1 WHERE CURRENT OF c;", 1, "CURRENT OF"),
            ("WITH x AS (SELECT 1) UPDATE t SET a = 1 WHERE b;", 1, "not an UPDATE"),
        ];
        for (sql, line, message) in bad {
            let e = Backfill::parse(sql).unwrap_err();
            assert_eq!(
                (e.line, e.message.contains(message)),
                (line, true),
                "{sql}: {}",
                e.message
            );
        }
    }

    #[test]
    fn progress_table_name() {
        assert!(is_progress_table(b"_Migrations_BACKFILL", "_migrations"));
        assert!(!is_progress_table(b"_migrations", "_migrations"));
        assert_eq!(progress_table("_migrations"), "_migrations_backfill");
    }
}
