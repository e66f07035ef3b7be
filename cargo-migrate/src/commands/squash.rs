//! `squash --to N [--dry-run]`: replaces migrations 1..=N with one
//! baseline, `{N}_baseline.sql`, whose SQL is the schema after N (the
//! schema model's [`schema_sql`] of the replay) and whose first line, the
//! directive `-- migrate:squashes 1-N DIGEST`, records the versions it
//! replaces and a digest of their names and checksums
//! ([`migrate_runtime::Squash`]). Before anything is written, the baseline
//! is checked: replayed alone it must give the schema model of migrations
//! 1..=N replayed, and with the later migrations on top, the schema of all
//! of them. On PostgreSQL the replays run in scratch databases on a server
//! (`pgsquash`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use migrate_build::scan::{FileName, Kind};
use migrate_runtime::model::{Filter, Model, schema_sql};
use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{EarlierSquash, Migration, Migrator, Script, Squash};

use crate::cli::SquashArgs;
use crate::git::Git;
use crate::messages::{count, say, warning};
use crate::package::{Package, show};
use crate::settings::Settings;

/// The baseline's name.
const NAME: &str = "baseline";

/// `squash --to N [--dry-run]`.
pub fn run(settings: &Settings, args: &SquashArgs) -> Result<()> {
    let package = &settings.package;
    let found = crate::migrations::load(package)?;
    let n = args.to;
    let Some(newest) = found.last() else {
        bail!(
            "there are no migrations in {} to squash",
            show(&package.migrations_dir())
        );
    };
    if n > newest.version {
        bail!(
            "--to {n} is beyond the newest migration, {} {}; squash up to a version on disk (`cargo migrate list`). Nothing was changed",
            package.version(newest.version),
            newest.name
        );
    }
    let runtime = crate::migrations::to_runtime(&found);
    // Squashing again: the baseline records the earlier ones it replaces,
    // so that databases made from any of them, or from their originals,
    // are accepted.
    let mut earlier = Vec::new();
    if let Some(squash) = runtime[0].squash() {
        let file = &found[0].up.display;
        if n <= squash.last {
            bail!(
                "--to {n} is {} the squash in {file}, which replaces versions 1 to {}; squash to a version above {}. Nothing was changed",
                if n == squash.last { "at" } else { "below" },
                squash.last,
                squash.last
            );
        }
        earlier = runtime[0].earlier_squashes();
        earlier.extend(EarlierSquash::of_baseline(&runtime[0]));
    }
    let Some(last) = found.iter().position(|f| f.version == n) else {
        bail!(
            "there is no migration {} on disk; squash up to a version that exists (`cargo migrate list`). Nothing was changed",
            package.version(n)
        );
    };
    if last == 0 {
        bail!("--to {n} would squash one migration into one: give a later version. Nothing was changed");
    }
    let table = &package.config.table;
    let replaced = &runtime[..=last];
    let digest = {
        let rows: Vec<(u64, String, String)> = replaced
            .iter()
            .map(|m| (m.version(), m.name().to_owned(), m.checksum().to_string()))
            .collect();
        Squash::digest(rows.iter().map(|(v, name, sum)| (*v, name.as_str(), sum.as_str())))
    };
    let baseline_text = |schema: &str| {
        let earlier: String = earlier.iter().map(|e| format!("{e}\n")).collect();
        format!(
            "-- migrate:squashes 1-{n} {digest}\n{earlier}\
             -- The schema that migrations {} to {} made, which this baseline replaces\n\
             -- (`cargo migrate squash --to {n}`): a database that applied them has, in effect,\n\
             -- applied it; a new database runs it.\n\n{schema}",
            package.version(found[0].version),
            package.version(n),
        )
    };
    let file_name = FileName {
        version: n,
        name: NAME.to_owned(),
        kind: Kind::UpOnly,
    }
    .to_file_name(package.config.width);
    let dir = package.migrations_dir();
    let path = dir.join(&file_name);
    let shown = show(&path);
    let (text, rows) = if package.config.backend() == migrate_build::Backend::Postgres {
        super::pgsquash::baseline(settings, &runtime, last, &shown, baseline_text)?
    } else {
        let filter = Filter::new(table);
        let before = replay(replaced, table, n)?;
        let text = baseline_text(&schema_sql(&before, &filter)?);
        verify(&runtime, last, &text, &shown, table, &filter, &before)?;
        let rows = tables_with_rows(&before, &Model::read(&before, &filter)?)?;
        (text, rows)
    };
    let removed: Vec<&Path> = found[..=last]
        .iter()
        .flat_map(|f| std::iter::once(f.up.path.as_path()).chain(f.down.as_ref().map(|d| d.path.as_path())))
        .collect();
    if args.dry_run {
        print!("{text}");
        say!(
            "dry run: would replace {} ({}) with {shown}, printed above; nothing was changed",
            count(last + 1, "migration"),
            count(removed.len(), "file")
        );
        return Ok(());
    }
    write(&dir, &path, &text, &removed)?;
    if !rows.is_empty() {
        warning!(
            "migrations 1 to {n} leave rows in {}: the baseline holds the schema only, so a new database starts without them; add the INSERTs to {shown} by hand if they are seed data",
            rows.join(", ")
        );
    }
    say!(
        "squashed {} ({}) into {shown}: databases at {} or later accept it as applied, a new database applies it, and one between 1 and {} is refused with the versions it lacks",
        count(last + 1, "migration"),
        count(removed.len(), "file"),
        package.version(n),
        package.version(n - 1)
    );
    relock(package)
}

/// A new in-memory database with `migrations` applied up to `to`.
fn replay(migrations: &[Migration], table: &str, to: u64) -> Result<Connection> {
    let mut conn = Connection::open_in_memory().context("cannot open an in-memory database")?;
    Migrator::new(migrations)
        .table(table)
        .contract(true)
        .migrate_to(&mut conn, to)
        .context("cannot replay the migrations to squash (run `cargo migrate check`)")?;
    Ok(conn)
}

/// The baseline as a migration, with the migrations after it: the squashed set.
pub(super) fn squashed(runtime: &[Migration], last: usize, text: &str, shown: &str) -> Vec<Migration> {
    let baseline = Migration::new(
        runtime[last].version(),
        NAME,
        Script::new(text.to_owned(), shown.to_owned()),
    );
    std::iter::once(baseline)
        .chain(runtime[last + 1..].iter().cloned())
        .collect()
}

/// Replays the baseline alone and with the later migrations, and compares
/// the schema models with those of the migrations it replaces.
fn verify(
    runtime: &[Migration],
    last: usize,
    text: &str,
    shown: &str,
    table: &str,
    filter: &Filter,
    before: &Connection,
) -> Result<()> {
    let n = runtime[last].version();
    let squashed = squashed(runtime, last, text, shown);
    let newest = runtime.last().map_or(n, Migration::version);
    let same = |a: &Connection, b: &Connection, what: &str| -> Result<()> {
        let (a, b) = (Model::read(a, filter)?, Model::read(b, filter)?);
        let differences = a.diff(&b);
        if a != b || !differences.is_empty() {
            bail!(
                "the baseline would not give the schema {what} ({}); this is a bug in `cargo migrate squash`: nothing was changed",
                differences
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        Ok(())
    };
    let alone = replay(&squashed, table, n)?;
    same(before, &alone, &format!("of migrations 1 to {n}"))?;
    let all = replay(runtime, table, newest)?;
    let on_top = replay(&squashed, table, newest)?;
    same(&all, &on_top, "of every migration")
}

/// The tables that hold rows after the replay.
fn tables_with_rows(conn: &Connection, model: &Model) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for name in model.tables.keys() {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let any: bool = conn
            .query_row(&format!("SELECT EXISTS (SELECT 1 FROM {quoted})"), [], |r| r.get(0))
            .unwrap_or(false);
        if any {
            out.push(name.clone());
        }
    }
    Ok(out)
}

/// Writes the baseline and removes the files it replaces (`git rm` when
/// git tracks them): the baseline goes to a temporary file first, so
/// nothing is removed when it cannot be written.
fn write(dir: &Path, path: &Path, text: &str, removed: &[&Path]) -> Result<()> {
    let temporary: PathBuf = dir.join(".baseline.sql.tmp");
    std::fs::write(&temporary, text).with_context(|| format!("cannot write {}", show(&temporary)))?;
    // Git only when it tracks the migrations (not an ignored directory).
    let git = Git::find(dir).filter(|g| removed.iter().any(|f| g.tracks(f)));
    for file in removed {
        match &git {
            Some(g) if g.tracks(file) => g.rm(file)?,
            _ => std::fs::remove_file(file).with_context(|| format!("cannot remove {}", show(file)))?,
        }
    }
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", show(path)))?;
    if let Some(g) = &git {
        g.add(path)?;
    }
    Ok(())
}

/// The lock file for the squashed set, when the package keeps one.
fn relock(package: &Package) -> Result<()> {
    if !package.config.lock_file {
        return Ok(());
    }
    let loaded =
        migrate_build::load(&package.dir, &package.config).map_err(crate::messages::Problems::in_migrations)?;
    let (lock, _) = migrate_build::lockfile::write(&package.migrations_dir(), &loaded.migrations, package.config.width)
        .map_err(crate::messages::Problems::in_migrations)?;
    say!("wrote {} for the squashed migrations", show(&lock));
    Ok(())
}
