//! `repair [--dry-run]`: re-stamps applied migrations whose files changed
//! only in comments, white space or the letter case of keywords (a linter,
//! an editor's newline), so they stop counting as modified.
//!
//! The text the database applied is not in the database (only its
//! checksum), so it is looked up in git: the version of the up file, in the
//! file's history, whose checksum is the recorded one. Its statements are
//! compared with the file's by the runtime's splitter and the schema
//! model's tokenizer ([`migrate_runtime::model::first_changed_statement`]).
//! Any other change refuses the repair, naming the first statement that
//! differs; nothing is written unless every modified migration can be
//! repaired.
//!
//! The repair is recorded in the tracking table: its checksum becomes the
//! file's, and the column `repaired` (added when missing; other versions of
//! the runtime read only their own columns) gets a line `OLD_CHECKSUM TIME`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use migrate_build::scan::Found;
use migrate_runtime::model::{ChangedStatement, Dialect, first_changed_statement};
use migrate_runtime::rusqlite::{Connection, TransactionBehavior};
use migrate_runtime::{Checksum, DEFAULT_LOCK_TIMEOUT, Migration, State, Status};

use super::Project;
use crate::cli::RepairArgs;
use crate::git::Git;
use crate::messages::{count, say};
use crate::settings::Settings;

/// One migration to re-stamp.
struct Repair<'m> {
    migration: &'m Migration,
    old: String,
    new: String,
}

/// `repair [--dry-run]`.
pub fn run(settings: &Settings, args: &RepairArgs) -> Result<()> {
    let project = Project::load(settings)?;
    let found = crate::migrations::load(&settings.package)?;
    let migrator = project.migrator(None);
    let postgres = project.database.postgres_url().is_some();
    let mut sqlite = None;
    let status = if postgres {
        super::postgres::status(&project, &migrator)?
    } else {
        let conn = project.open_existing(DEFAULT_LOCK_TIMEOUT, "repair")?;
        let status = project.status(&migrator, &conn)?;
        sqlite = Some(conn);
        status
    };
    let shown = project.database.shown();
    if status.entries.iter().all(|e| e.applied.is_none()) && status.unknown.is_empty() {
        bail!(
            "{shown} has no applied migration (its tracking table `{}` is missing or empty), so there is nothing to repair; `repair` re-stamps migrations a database applied whose files changed since in comments or white space only — check the database (--database, DATABASE_URL or database in [package.metadata.migrate]), or apply the migrations with `cargo migrate up`",
            project.package.config.table
        );
    }
    let modified: Vec<_> = status.entries.iter().filter(|e| e.state == State::Modified).collect();
    if modified.is_empty() {
        say!(
            "nothing to repair: the {} {shown} applied match their files",
            count(applied(&status), "migration")
        );
        return Ok(());
    }
    let git = Git::require(&project.package.migrations_dir(), "`cargo migrate repair`")?;
    let dialect = if postgres { Dialect::Postgres } else { Dialect::Sqlite };
    let mut repairs = Vec::new();
    for entry in &modified {
        let m = entry.migration;
        let applied = entry
            .applied
            .as_ref()
            .context("a modified migration has a tracking row")?;
        let file = m.up().file();
        if applied.name != m.name() {
            bail!(
                "{file}: migration {} was applied as `{}` but is now called `{}`: a renamed migration is not a cosmetic change; restore its name. Nothing was repaired",
                project.version(m.version()),
                applied.name,
                m.name()
            );
        }
        let disk = found
            .iter()
            .find(|f| f.version == m.version())
            .context("the migration is on disk")?;
        let old_text = applied_text(&git, disk, &applied.checksum)?;
        if let Some(changed) = first_changed_statement(&old_text, m.up().sql(), dialect) {
            bail!("{}", refusal(&project, m, &changed));
        }
        repairs.push(Repair {
            migration: m,
            old: applied.checksum.clone(),
            new: m.checksum().to_string(),
        });
    }
    let verb = if args.dry_run { "would repair" } else { "repaired" };
    if !args.dry_run {
        match &mut sqlite {
            Some(conn) => write_sqlite(conn, &project, &repairs)?,
            None => write_postgres(&project, &repairs)?,
        }
    }
    for r in &repairs {
        say!(
            "{verb} {} {}: same statements, only comments or white space changed; checksum {} → {}",
            project.version(r.migration.version()),
            r.migration.name(),
            &r.old[..r.old.len().min(12)],
            &r.new[..12]
        );
    }
    if args.dry_run {
        say!("dry run: nothing was changed");
    } else {
        let repaired: Vec<Found> = found
            .iter()
            .filter(|f| repairs.iter().any(|r| r.migration.version() == f.version))
            .cloned()
            .collect();
        super::lock::after_repair(&settings.package, &repaired);
        say!(
            "recorded the old {} in the `repaired` column of `{}`",
            if repairs.len() == 1 { "checksum" } else { "checksums" },
            project.package.config.table
        );
    }
    Ok(())
}

fn applied(status: &Status<'_>) -> usize {
    status.entries.iter().filter(|e| e.applied.is_some()).count() + status.unknown.len()
}

/// The text of `disk`'s up file whose checksum is `checksum`, from the
/// file's git history.
fn applied_text(git: &Git, disk: &Found, checksum: &str) -> Result<String> {
    let want = Checksum::parse(checksum);
    let history = git.history_of(&disk.up.path)?;
    let objects: Vec<&str> = history.iter().map(|(_, object)| object.as_str()).collect();
    for blob in git.blobs(&objects)? {
        let text = String::from_utf8_lossy(&blob).into_owned();
        if Some(Checksum::of(&text)) == want {
            return Ok(text);
        }
    }
    bail!(
        "{}: the text the database applied (checksum {checksum}) is not in the file's git history ({}), so `repair` cannot compare its statements with the file's; restore that text if you have it, or pass --allow-modified to `cargo migrate up`. Nothing was repaired",
        disk.up.display,
        count(history.len(), "version")
    )
}

/// The message refusing a migration whose statements changed.
fn refusal(project: &Project<'_>, m: &Migration, changed: &ChangedStatement) -> String {
    let file = m.up().file();
    let short = |s: &str| {
        let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
        match one.char_indices().nth(60) {
            Some((at, _)) => format!("`{}…`", &one[..at]),
            None if one.is_empty() => "nothing".to_owned(),
            None => format!("`{one}`"),
        }
    };
    let what = if changed.number == 0 {
        "a `-- migrate:` directive changed".to_owned()
    } else {
        format!("statement {} differs", changed.number)
    };
    let line = if changed.new_line == 0 {
        String::new()
    } else {
        format!(":{}", changed.new_line)
    };
    format!(
        "{file}{line}: migration {} {} changed more than comments and white space since it was applied: {what} (now {}, applied {}); restore the applied text and put the change in a new migration. Nothing was repaired",
        project.version(m.version()),
        m.name(),
        short(&changed.new),
        short(&changed.old)
    )
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn write_sqlite(conn: &mut Connection, project: &Project<'_>, repairs: &[Repair<'_>]) -> Result<()> {
    let table = &project.package.config.table;
    let failed = || format!("cannot update the tracking table `{table}`");
    conn.busy_timeout(Duration::from_secs(60)).with_context(failed)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .with_context(failed)?;
    let has_column: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = 'repaired'",
            [table],
            |r| r.get(0),
        )
        .with_context(failed)?;
    if !has_column {
        tx.execute_batch(&format!("ALTER TABLE {} ADD COLUMN repaired TEXT", quote(table)))
            .with_context(failed)?;
    }
    let update = format!(
        "UPDATE {} SET checksum = ?1, repaired = coalesce(repaired || char(10), '') || ?2 || ' ' || strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE version = ?3 AND checksum = ?2",
        quote(table)
    );
    restamp(repairs, &format!("`{table}`"), |r, version| {
        tx.execute(&update, (&r.new, &r.old, version)).with_context(failed)
    })?;
    // The history changed under the newest row: the next start-up verifies
    // every row again instead of trusting the digest stamped before.
    project.migrator(None).forget_history_digest(&tx)?;
    tx.commit().with_context(failed)
}

fn write_postgres(project: &Project<'_>, repairs: &[Repair<'_>]) -> Result<()> {
    let config = &project.package.config;
    let table = match &config.schema {
        Some(schema) => format!("{}.{}", quote(schema), quote(&config.table)),
        None => quote(&config.table),
    };
    let failed = || format!("cannot update the tracking table {table}");
    let mut client = project.database.connect()?;
    let mut tx = client.transaction().with_context(failed)?;
    tx.batch_execute(&format!("ALTER TABLE {table} ADD COLUMN IF NOT EXISTS repaired text"))
        .with_context(failed)?;
    let update = format!(
        "UPDATE {table} SET checksum = $1, repaired = coalesce(repaired || chr(10), '') || $2 || ' ' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') WHERE version = $3 AND checksum = $2"
    );
    restamp(repairs, &table, |r, version| {
        tx.execute(&update, &[&r.new, &r.old, &version])
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .with_context(failed)
    })?;
    project.migrator(None).forget_history_digest_postgres(&mut tx)?;
    tx.commit().with_context(failed)
}

/// Runs `update` (which sets the checksum where the old one still is, and
/// says how many rows it changed) for each repair; a row that another
/// process changed meanwhile stops it, and the caller's transaction is
/// not committed.
fn restamp(
    repairs: &[Repair<'_>],
    table: &str,
    mut update: impl FnMut(&Repair<'_>, i64) -> Result<usize>,
) -> Result<()> {
    for r in repairs {
        let version = i64::try_from(r.migration.version()).context("version out of range")?;
        if update(r, version)? != 1 {
            bail!(
                "migration {} changed in {table} while `repair` ran (another process?); nothing was repaired, run it again",
                r.migration.version()
            );
        }
    }
    Ok(())
}
