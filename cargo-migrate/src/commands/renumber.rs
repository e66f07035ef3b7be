//! `renumber`: after a merge of two branches that both added the same
//! version, moves the migrations that are not applied yet to the end.
//!
//! The scanner refuses duplicate versions, so this command reads the raw
//! directory listing, parsing each name with the scanner's own
//! `parse_file_name`.
//!
//! Which migrations move:
//!
//! - With a database, the first conflict is the lowest version where an
//!   unapplied migration shares its version with another migration, or
//!   sits below an applied one. Every unapplied migration from that version
//!   on moves, in order; applied migrations never move.
//! - Without one, the first conflict is the lowest duplicate version, and
//!   the migration there that was added later (git history, else the file's
//!   modification time) moves, with every migration from that version on
//!   that was added no earlier than it: the later branch's migrations, in
//!   their order.
//!
//! With `--consecutive`, every migration is renumbered 1, 2, 3, … in its
//! current order (versions that are timestamps, as sqlx and diesel write
//! them, or a sequence with gaps); both files of a pair move together. With
//! a database that has applied any migration that would get a new version,
//! nothing is renamed: the database would see its history as unknown.
//!
//! Moved migrations take the versions after the highest one that stays, so
//! the sequence has no gaps; when staying put would leave a gap (a pending
//! migration below an applied one, with nothing to fill its place), nothing
//! is renamed and the error says what to do.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use migrate_build::scan::{FileName, Kind, parse_file_name};
use migrate_runtime::{DEFAULT_LOCK_TIMEOUT, Migrator};

use crate::cli::RenumberArgs;
use crate::database::{Mode, Source};
use crate::git::Git;
use crate::output::count;
use crate::package::{Package, show};
use crate::settings::Settings;

/// One migration on disk: the files that share a version and a name.
#[derive(Debug)]
struct Entry {
    version: u64,
    name: String,
    files: Vec<(Kind, PathBuf)>,
    /// When it was added, in seconds since the epoch.
    added: i64,
    /// Whether the database has applied it.
    applied: bool,
}

impl Entry {
    fn key(&self) -> (u64, i64, &str) {
        (self.version, self.added, &self.name)
    }
}

/// `renumber [--dry-run]`.
pub fn run(settings: &Settings, args: &RenumberArgs) -> Result<()> {
    let package = &settings.package;
    let dir = package.migrations_dir();
    if !dir.is_dir() {
        bail!(
            "the migrations directory {} does not exist; create it with `cargo migrate init` (or set dir in [package.metadata.migrate])",
            show(&dir)
        );
    }
    let git = Git::find(&dir);
    let history = match &args.against {
        Some(reference) => Some(at_ref(package, &dir, reference)?),
        None => history(settings)?,
    };
    let mut entries = read(package, &dir, git.as_ref())?;
    if let Some((_, applied)) = &history {
        for e in &mut entries {
            e.applied = applied.iter().any(|(v, n)| *v == e.version && *n == e.name);
        }
    }
    if args.consecutive {
        return consecutive(package, &dir, git.as_ref(), &entries, history.as_ref(), args.dry_run);
    }
    let Some(plan) = plan(&entries, history.as_ref().map(|(_, h)| h.as_slice()), package)? else {
        eprintln!(
            "nothing to renumber: no two migrations share a version{}",
            if history.is_some() {
                ", and none is pending below an applied one"
            } else {
                ""
            }
        );
        return Ok(());
    };
    let renames = renames(&plan, package, &dir, Order::Descending)?;
    perform(&renames, git.as_ref(), args.dry_run)?;
    let basis = match (&history, &args.against) {
        (Some(_), Some(reference)) => format!("not at {reference}"),
        (Some((shown, _)), None) => format!("not applied in {shown}"),
        (None, _) => "added later, by git history or file times".to_owned(),
    };
    let moved: Vec<String> = plan
        .iter()
        .map(|(e, v)| format!("{} {} → {}", package.version(e.version), e.name, package.version(*v)))
        .collect();
    if args.dry_run {
        eprintln!(
            "dry run: would move {} ({basis}) to the end: {}; nothing was renamed",
            count(plan.len(), "migration"),
            moved.join(", ")
        );
    } else {
        eprintln!(
            "moved {} ({basis}) to the end: {}; check the result with `cargo migrate check`",
            count(plan.len(), "migration"),
            moved.join(", ")
        );
    }
    if !args.dry_run {
        super::lock::after_renumber(package)?;
    }
    Ok(())
}

/// Renames (or, in a dry run, lists) the files.
fn perform(renames: &[Rename], git: Option<&Git>, dry_run: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let verb = if dry_run { "would rename" } else { "renamed" };
    for r in renames {
        let how = match git {
            Some(g) if g.tracks(&r.from) => " (git mv)",
            _ => "",
        };
        if !dry_run {
            rename(git, &r.from, &r.to)?;
        }
        writeln!(out, "{verb} {} → {}{how}", show(&r.from), show(&r.to))?;
    }
    out.flush()?;
    Ok(())
}

/// `renumber --consecutive`: every migration gets 1, 2, 3, … in its
/// current order, unless the database has applied one that would move.
fn consecutive(
    package: &Package,
    dir: &Path,
    git: Option<&Git>,
    entries: &[Entry],
    history: Option<&(String, Vec<Known>)>,
    dry_run: bool,
) -> Result<()> {
    let mut ordered: Vec<&Entry> = entries.iter().collect();
    ordered.sort_by(|a, b| a.key().cmp(&b.key()));
    let plan: Vec<(&Entry, u64)> = ordered.into_iter().zip(1..).filter(|(e, v)| e.version != *v).collect();
    if plan.is_empty() {
        eprintln!("nothing to renumber: the versions are already 1 to {}", entries.len());
        return Ok(());
    }
    if let Some((shown, applied)) = history {
        let moving: Vec<String> = plan
            .iter()
            .filter(|(e, _)| applied.iter().any(|(v, _)| *v == e.version))
            .map(|(e, _)| format!("{} {}", package.version(e.version), e.name))
            .collect();
        if !moving.is_empty() {
            bail!(
                "{shown} has applied {} under {} current versions ({}), so renumbering would make its history unknown to the code; nothing was renamed. Renumber where no database has applied them (delete a throw-away development database, renumber, then `cargo migrate up`), or after renaming update that database's tracking table to the new versions in the same order",
                count(moving.len(), "migration"),
                if moving.len() == 1 { "its" } else { "their" },
                moving.join(", ")
            );
        }
    }
    let renames = renames(&plan, package, dir, Order::Ascending)?;
    perform(&renames, git, dry_run)?;
    let moved: Vec<String> = plan
        .iter()
        .map(|(e, v)| format!("{} {} → {}", e.version, e.name, package.version(*v)))
        .collect();
    if dry_run {
        eprintln!(
            "dry run: would renumber {} consecutively, in their current order: {}; nothing was renamed",
            count(plan.len(), "migration"),
            moved.join(", ")
        );
    } else {
        eprintln!(
            "renumbered {} consecutively, in their current order: {}; check the result with `cargo migrate check`",
            count(plan.len(), "migration"),
            moved.join(", ")
        );
    }
    if !dry_run {
        super::lock::after_renumber(package)?;
    }
    Ok(())
}

/// The database's applied migrations, when there is a database to ask:
/// one given with --database must exist; one from DATABASE_URL or the
/// config is used when its file exists.
/// A migration that must keep its version: applied in the database, or
/// present at the `--against` ref.
type Known = (u64, String);

/// The migrations at the git ref `reference` (`--against`): they keep
/// their versions, as applied ones do.
fn at_ref(package: &Package, dir: &Path, reference: &str) -> Result<(String, Vec<Known>)> {
    let git = Git::require(dir, "`cargo migrate renumber --against`")?;
    let commit = git.commit(reference)?;
    let mut known: Vec<Known> = git
        .files_at(&commit, &Git::prefix(dir)?)?
        .into_iter()
        .filter_map(|f| parse_file_name(&f.name, package.config.width).ok())
        .map(|f| (f.version, f.name))
        .collect();
    known.sort();
    known.dedup();
    Ok((reference.to_owned(), known))
}

fn history(settings: &Settings) -> Result<Option<(String, Vec<Known>)>> {
    let Some(database) = &settings.database else {
        return Ok(None);
    };
    let migrator = Migrator::new(&[]).table(&settings.package.config.table);
    if database.postgres_url().is_some() {
        let mut migrator = migrator;
        if let Some(schema) = &settings.package.config.schema {
            migrator = migrator.schema(schema);
        }
        let status = migrator.status_postgres(&mut database.connect()?)?;
        return Ok(Some((database.shown(), known(status.unknown))));
    }
    let Some(opened) = database.open(Mode::ReadOnly, DEFAULT_LOCK_TIMEOUT)? else {
        if database.source == Source::Flag {
            bail!(
                "the database file {} does not exist; give the database whose applied migrations must keep their versions, or leave out --database to decide by git history",
                database.shown()
            );
        }
        eprintln!(
            "note: the database file {} does not exist; deciding which migrations are newer by git history",
            database.shown()
        );
        return Ok(None);
    };
    // With no migrations, every row of the tracking table is "unknown": the
    // whole history, read by the runtime.
    let status = migrator.status(&opened.conn)?;
    Ok(Some((database.shown(), known(status.unknown))))
}

fn known(applied: Vec<migrate_runtime::Applied>) -> Vec<Known> {
    applied.into_iter().map(|a| (a.version, a.name)).collect()
}

/// The migration files in `dir`, grouped by version and name. Files whose
/// names do not parse are left alone (`cargo migrate check` reports them).
fn read(package: &Package, dir: &Path, git: Option<&Git>) -> Result<Vec<Entry>> {
    let mut groups: BTreeMap<(u64, String), Vec<(Kind, PathBuf)>> = BTreeMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", show(dir)))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", show(dir)))?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !file_name.to_ascii_lowercase().ends_with(".sql") || !entry.path().is_file() {
            continue;
        }
        match parse_file_name(&file_name, package.config.width) {
            Ok(FileName { version, name, kind }) => {
                groups.entry((version, name)).or_default().push((kind, entry.path()));
            }
            Err(message) => eprintln!("warning: left as it is: {message}"),
        }
    }
    Ok(groups
        .into_iter()
        .map(|((version, name), mut files)| {
            files.sort();
            let added = files
                .iter()
                .filter_map(|(_, path)| added(git, path))
                .min()
                .unwrap_or(i64::MAX);
            Entry {
                version,
                name,
                files,
                added,
                applied: false,
            }
        })
        .collect())
}

/// Which migrations move, and to which version; `None` when nothing needs to.
fn plan<'e>(
    entries: &'e [Entry],
    history: Option<&[Known]>,
    package: &Package,
) -> Result<Option<Vec<(&'e Entry, u64)>>> {
    let mut per_version: BTreeMap<u64, usize> = BTreeMap::new();
    for e in entries {
        *per_version.entry(e.version).or_default() += 1;
    }
    let shared = |e: &Entry| per_version.get(&e.version).copied().unwrap_or(0) > 1;
    let movers: Vec<&Entry> = match history {
        Some(history) => {
            let applied_versions: BTreeSet<u64> = history.iter().map(|(v, _)| *v).collect();
            let top = applied_versions.last().copied().unwrap_or(0);
            let conflict =
                |e: &&Entry| !e.applied && (shared(e) || applied_versions.contains(&e.version) || e.version < top);
            let Some(first) = entries.iter().filter(conflict).map(|e| e.version).min() else {
                return Ok(None);
            };
            entries.iter().filter(|e| !e.applied && e.version >= first).collect()
        }
        None => {
            let Some(first) = entries.iter().filter(|e| shared(e)).map(|e| e.version).min() else {
                return Ok(None);
            };
            // The older migration at the first duplicate version stays; the
            // later one moves, with what was added since on higher versions.
            let mut at_first: Vec<&Entry> = entries.iter().filter(|e| e.version == first).collect();
            at_first.sort_by(|a, b| a.key().cmp(&b.key()));
            let since = at_first[1].added;
            at_first
                .into_iter()
                .skip(1)
                .chain(entries.iter().filter(|e| e.version > first && e.added >= since))
                .collect()
        }
    };
    let mut movers = movers;
    movers.sort_by(|a, b| a.key().cmp(&b.key()));
    let staying: Vec<&Entry> = entries
        .iter()
        .filter(|e| !movers.iter().any(|m| std::ptr::eq(*m, *e)))
        .collect();
    let mut kept: BTreeMap<u64, &str> = staying.iter().map(|e| (e.version, e.name.as_str())).collect();
    for (version, name) in history.unwrap_or_default() {
        kept.entry(*version).or_insert(name);
    }
    if let Some((v, name)) = staying
        .iter()
        .find(|e| staying.iter().filter(|o| o.version == e.version).count() > 1)
        .map(|e| (e.version, &e.name))
    {
        bail!(
            "cannot tell which migration with version {} to move (`{name}` and another, added at the same time or interleaved); rename one by hand, or give the database that has applied one with --database",
            package.version(v)
        );
    }
    let versions: Vec<u64> = kept.keys().copied().collect();
    if let Some(pair) = versions.windows(2).find(|w| w[1] > w[0] + 1) {
        let hole = pair[0] + 1;
        let pending: Vec<String> = movers
            .iter()
            .filter(|m| m.version < pair[1])
            .map(|m| format!("{} {}", package.version(m.version), m.name))
            .collect();
        bail!(
            "moving {} to the end would leave version {} empty, below applied version {} (a gap, which the build refuses); roll the database back with `cargo migrate down --to {}` and run renumber again, or apply out of order with `cargo migrate up --allow-out-of-order`",
            pending.join(", "),
            package.version(hole),
            package.version(pair[1]),
            pair[0]
        );
    }
    let base = versions.last().copied().unwrap_or(0);
    let plan: Vec<(&Entry, u64)> = movers
        .into_iter()
        .zip(base + 1..)
        .filter(|(e, v)| e.version != *v)
        .collect();
    Ok((!plan.is_empty()).then_some(plan))
}

/// One file to rename.
struct Rename {
    from: PathBuf,
    to: PathBuf,
}

/// In which order of new versions files are renamed: away from the
/// versions they move towards, so that no file is in the way.
#[derive(Clone, Copy)]
enum Order {
    /// Highest new version first (migrations move up, to the end).
    Descending,
    /// Lowest new version first (migrations move down, `--consecutive`).
    Ascending,
}

/// The renames of `plan` in `order`, checked so that no file is overwritten.
fn renames(plan: &[(&Entry, u64)], package: &Package, dir: &Path, order: Order) -> Result<Vec<Rename>> {
    let mut ordered: Vec<&(&Entry, u64)> = plan.iter().collect();
    match order {
        Order::Descending => ordered.sort_by_key(|(_, v)| std::cmp::Reverse(*v)),
        Order::Ascending => ordered.sort_by_key(|(_, v)| *v),
    }
    let mut out = Vec::new();
    let mut vacated = BTreeSet::new();
    let mut taken = BTreeSet::new();
    for (entry, version) in ordered {
        for (kind, from) in &entry.files {
            let name = FileName {
                version: *version,
                name: entry.name.clone(),
                kind: *kind,
            };
            let to = dir.join(name.to_file_name(package.config.width));
            if (to.exists() && !vacated.contains(&to)) || !taken.insert(to.clone()) {
                bail!(
                    "cannot rename {} to {}: that file exists; nothing was renamed",
                    show(from),
                    show(&to)
                );
            }
            vacated.insert(from.clone());
            out.push(Rename { from: from.clone(), to });
        }
    }
    Ok(out)
}

fn rename(git: Option<&Git>, from: &Path, to: &Path) -> Result<()> {
    if let Some(git) = git.filter(|g| g.tracks(from)) {
        return git.mv(from, to);
    }
    std::fs::rename(from, to).with_context(|| format!("cannot rename {} to {}", show(from), show(to)))
}

/// When a file was added: the time of the git commit that added it, else
/// its modification time.
fn added(git: Option<&Git>, path: &Path) -> Option<i64> {
    git.and_then(|g| g.added(path)).or_else(|| {
        let modified = std::fs::metadata(path).ok()?.modified().ok()?;
        let since = modified.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        i64::try_from(since.as_secs()).ok()
    })
}
