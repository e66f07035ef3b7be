//! `import --from TOOL [SRC] [--partial] [--database URL]`: another tool's
//! migrations converted into ours (one small converter per tool, each
//! naming where its layout was learned), and with `--database`, a
//! database's history taken over from that tool's tracking table.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use migrate_build::scan::{FileName, Kind};
use migrate_runtime::Previous;

use crate::cli::{ImportArgs, Tool};
use crate::database::{Database, Source};
use crate::messages::{self, Problems, count, note, say, warning};
use crate::package::{Package, show};
use crate::settings::Settings;

mod dbmate;
mod diesel;
mod flyway;
mod golang_migrate;
mod goose;
mod history;
mod refinery;
mod rusqlite_migration;
mod source;
mod sqlx;

pub(super) use history::Target;
use migrate_build::imported::{self as mapping, Imported as Mapping};
use source::Converted;

/// The runtime's name for the tool.
fn previous(tool: Tool) -> Previous {
    match tool {
        Tool::Sqlx => Previous::Sqlx,
        Tool::Diesel => Previous::Diesel,
        Tool::Refinery => Previous::Refinery,
        Tool::Dbmate => Previous::Dbmate,
        Tool::Goose => Previous::Goose,
        Tool::GolangMigrate => Previous::GolangMigrate,
        Tool::Flyway => Previous::Flyway,
        Tool::RusqliteMigration => Previous::RusqliteMigration,
    }
}

/// Where the tool keeps its migrations unless told otherwise, relative to
/// the package: sqlx, diesel, refinery, goose, golang-migrate and
/// rusqlite_migration examples use `migrations`, dbmate `db/migrations`
/// (its `--migrations-dir` default), the Flyway command line `sql`.
fn default_src(tool: Tool) -> &'static str {
    match tool {
        Tool::Dbmate => "db/migrations",
        Tool::Flyway => "sql",
        _ => "migrations",
    }
}

/// Reads `src` in `tool`'s layout.
fn convert(tool: Tool, src: &Path) -> Result<Converted> {
    match tool {
        Tool::Sqlx => sqlx::read_dir(src),
        Tool::Diesel => diesel::read_dir(src),
        Tool::Refinery => refinery::read_dir(src),
        Tool::Dbmate => dbmate::read_dir(src),
        Tool::Goose => goose::read_dir(src),
        Tool::GolangMigrate => golang_migrate::read_dir(src),
        Tool::Flyway => flyway::read_dir(src),
        Tool::RusqliteMigration => rusqlite_migration::read_dir(src),
    }
}

/// `import`.
pub fn run(settings: &Settings, args: &ImportArgs) -> Result<()> {
    let package = &settings.package;
    let tool = previous(args.from);
    let database = settings
        .database_flag
        .as_deref()
        .map(|url| Database::parse(url, Source::Flag, &settings.cwd))
        .transpose()?;
    let dir = package.migrations_dir();
    let mapping_path = dir.join(mapping::FILE);
    let mapping = match &database {
        Some(_) if mapping_path.is_file() => {
            let mapping = Mapping::read(&dir, &package.dir)
                .map_err(Problems::in_migrations)?
                .with_context(|| format!("{} vanished", show(&mapping_path)))?;
            if mapping.from != tool.name() {
                bail!(
                    "{}: the migrations were imported from {}, not {}; pass --from {}",
                    show(&mapping_path),
                    mapping.from,
                    tool.name(),
                    mapping.from
                );
            }
            if let Some(src) = &args.src {
                note!(
                    "{} exists, so the migrations are imported already: {} is not read again",
                    show(&mapping_path),
                    show(src)
                );
            }
            mapping
        }
        Some(_) if tool == Previous::RusqliteMigration && args.src.is_none() && has_migrations(&dir) => {
            // Migrations written in code: the user wrote ours by hand, in
            // the same order; its n-th migration is our version n.
            note!(
                "no {}: taking rusqlite_migration's migration n to be our version n",
                show(&mapping_path)
            );
            Mapping::new(tool.name(), "", Vec::new())
        }
        Some(_) if has_migrations(&dir) => bail!(
            "{} has migrations but no {}: they were not written by `cargo migrate import`, so which of {}'s versions each one is cannot be known; import {}'s directory into an empty migrations directory first (or, for a database made without any tool, use `cargo migrate baseline --version N`); nothing was recorded",
            show(&dir),
            mapping::FILE,
            tool.name(),
            tool.name()
        ),
        _ => import_files(settings, args, tool)?,
    };
    match &database {
        Some(db) => history::take_over(settings, args, tool, &mapping, db),
        None => {
            say!(
                "next: take over each existing database's history with `cargo migrate import --from {} --database URL` (it runs nothing; its {} stays as it is)",
                tool.name(),
                tool.table().unwrap_or("PRAGMA user_version")
            );
            Ok(())
        }
    }
}

/// Whether `dir` holds any migration file.
fn has_migrations(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".sql"))))
}

/// Converts the files of SRC into the (empty) migrations directory, writes
/// `imported.toml`, and checks the result.
fn import_files(settings: &Settings, args: &ImportArgs, tool: Previous) -> Result<Mapping> {
    let package = &settings.package;
    let src = match &args.src {
        Some(src) => settings.cwd.join(src),
        None => package.dir.join(default_src(args.from)),
    };
    let dir = package.migrations_dir();
    if !src.is_dir() {
        bail!(
            "{} is not a directory: where are the {} migrations? Pass their directory: `cargo migrate import --from {} DIR`; nothing was written",
            show(&src),
            tool.name(),
            tool.name()
        );
    }
    if same_dir(&src, &dir) {
        bail!(
            "{} is both the {} migrations and ours (`dir` in [package.metadata.migrate]); move the old ones aside first (`git mv {} {}-{}`), then `cargo migrate import --from {} {}-{}`; nothing was written",
            show(&src),
            tool.name(),
            show(&src),
            show(&src),
            tool.name(),
            tool.name(),
            show(&src),
            tool.name()
        );
    }
    let snapshot = migrate_build::snapshot_path(&package.dir, &package.config);
    refuse_non_empty(&dir, snapshot.as_deref())?;
    let converted = convert(args.from, &src)?;
    if converted.migrations.is_empty() && converted.unconvertible.is_empty() {
        bail!(
            "{} holds no {} migration{}; is --from right? Nothing was written",
            show(&src),
            tool.name(),
            if converted.ignored.is_empty() {
                String::new()
            } else {
                format!(" (only {})", converted.ignored.join(", "))
            }
        );
    }
    for u in &converted.unconvertible {
        let text = format!("{}: cannot be converted: {}", show(&src.join(&u.file)), u.why);
        if args.partial {
            warning!("{text}; left out (--partial)");
        } else {
            messages::line(Some(messages::Label::Error), text);
        }
    }
    if !converted.unconvertible.is_empty() && !args.partial {
        bail!(
            "{} of {} cannot be converted (listed above); nothing was written. Convert them by hand, or pass --partial to import the other {} and leave them out",
            count(converted.unconvertible.len(), "file"),
            show(&src),
            count(converted.migrations.len(), "migration")
        );
    }
    let source = args
        .src
        .as_ref()
        .map_or_else(|| default_src(args.from).to_owned(), |s| s.display().to_string());
    let mapping = write(package, tool, &converted, &source)?;
    say!(
        "imported {} from {} into {}, in {}'s order (the mapping is in {}):",
        count(mapping.migrations.len(), &format!("{} migration", tool.name())),
        show(&src),
        show(&dir),
        tool.name(),
        show(&dir.join(mapping::FILE))
    );
    for (e, m) in mapping.migrations.iter().zip(&converted.migrations) {
        let mut extra = Vec::new();
        if m.down.is_some() {
            extra.push("with down");
        }
        if m.up_no_transaction || m.down_no_transaction {
            extra.push("no-transaction");
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" ({})", extra.join(", "))
        };
        say!("  {} {} ← {}{extra}", package.version(e.version), e.name, m.files[0]);
    }
    let config = ignore_old_table(package, tool)?;
    check(package, &config, mapping.migrations.len())?;
    Ok(mapping)
}

/// Whether `a` and `b` are the same directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Refuses a migrations directory that has anything in it but hidden files
/// and the schema snapshot (`init` writes one for the empty schema; it is
/// written again after the import).
fn refuse_non_empty(dir: &Path, snapshot: Option<&Path>) -> Result<()> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Ok(()); // missing: created when writing
    };
    let mut names: Vec<String> = read
        .filter_map(Result::ok)
        .filter(|e| snapshot.is_none_or(|s| e.path() != s))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    if let Some(first) = names.first() {
        bail!(
            "{} is not empty (it has {first}{}): import writes into an empty migrations directory, so that nothing mixes; move its files away (or point `dir` in [package.metadata.migrate] at a new directory), then import again; nothing was written",
            show(dir),
            match names.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            }
        );
    }
    Ok(())
}

/// Writes the migration files and `imported.toml`; on failure removes
/// what it wrote. Prints each file written on standard output.
fn write(package: &Package, tool: Previous, converted: &Converted, source: &str) -> Result<Mapping> {
    let dir = package.migrations_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", show(&dir)))?;
    let mut written: Vec<PathBuf> = Vec::new();
    let mut mapping = Mapping::new(tool.name(), source, Vec::new());
    mapping.skipped = converted
        .unconvertible
        .iter()
        .map(|u| mapping::Skipped::new(&u.file, &u.why))
        .collect();
    let result = (|| -> Result<()> {
        for (version, m) in (1u64..).zip(&converted.migrations) {
            let files: Vec<(Kind, &str, bool)> = match &m.down {
                Some(down) => vec![
                    (Kind::Up, &m.up, m.up_no_transaction),
                    (Kind::Down, down, m.down_no_transaction),
                ],
                None => vec![(Kind::UpOnly, &m.up, m.up_no_transaction)],
            };
            for (kind, sql, no_tx) in files {
                let name = FileName {
                    version,
                    name: m.name.clone(),
                    kind,
                }
                .to_file_name(package.config.width);
                let path = dir.join(&name);
                let from = if kind == Kind::Down {
                    m.files.get(1).unwrap_or(&m.files[0])
                } else {
                    &m.files[0]
                };
                let directive = if no_tx { "-- migrate:no-transaction\n" } else { "" };
                let text = format!(
                    "{directive}-- Imported from {}: {from}\n{}",
                    tool.name(),
                    sql.trim_start_matches('\n')
                );
                super::new::create_new(&path, &text)?;
                written.push(path);
            }
            mapping.migrations.push(mapping::Entry::new(
                version,
                &m.name,
                &m.source_version,
                m.files.clone(),
            ));
        }
        let path = dir.join(mapping::FILE);
        super::new::create_new(&path, &mapping.to_toml())?;
        written.push(path);
        Ok(())
    })();
    if let Err(e) = result {
        for p in &written {
            let _ = std::fs::remove_file(p);
        }
        return Err(e.context("nothing was written"));
    }
    let mut out = std::io::stdout().lock();
    for p in &written {
        use std::io::Write as _;
        writeln!(out, "{}", show(p))?;
    }
    Ok(mapping)
}

/// Adds the old tool's tracking table to `ignore` in the manifest (it stays
/// in every database, untouched, and is not drift); returns the config
/// with it.
fn ignore_old_table(package: &Package, tool: Previous) -> Result<migrate_build::Config> {
    let mut config = package.config.clone();
    let Some(table) = tool.table() else {
        return Ok(config);
    };
    if config.ignore.iter().any(|p| p.eq_ignore_ascii_case(table)) {
        return Ok(config);
    }
    let manifest = &package.manifest;
    let text = std::fs::read_to_string(manifest).with_context(|| format!("cannot read {}", show(manifest)))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("cannot parse {}", show(manifest)))?;
    let not_table = || anyhow!("[package.metadata.migrate] in {} is not a table", show(manifest));
    let mut at = doc.as_table_mut();
    for key in ["package", "metadata", "migrate"] {
        let item = at.entry(key).or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(key != "migrate");
            toml_edit::Item::Table(t)
        });
        at = item.as_table_mut().ok_or_else(not_table)?;
    }
    let list = at
        .entry("ignore")
        .or_insert_with(|| toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .ok_or_else(|| {
            anyhow!(
                "`ignore` in [package.metadata.migrate] of {} is not a list",
                show(manifest)
            )
        })?;
    list.push(table);
    std::fs::write(manifest, doc.to_string()).with_context(|| format!("cannot write {}", show(manifest)))?;
    config.ignore.push(table.to_owned());
    note!(
        "added \"{table}\" to `ignore` in [package.metadata.migrate] of {}: {}'s table stays in the databases, untouched, and is not drift",
        show(manifest),
        tool.name()
    );
    Ok(config)
}

/// The build's own check of what was written; the files stay either way.
fn check(package: &Package, config: &migrate_build::Config, n: usize) -> Result<()> {
    // The snapshot (`snapshot` in the config) follows the imported
    // migrations, as `cargo migrate schema --write` writes it.
    if let Some(path) = migrate_build::snapshot_path(&package.dir, config)
        && let Ok(text) = migrate_build::schema_snapshot(&package.dir, config)
    {
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", show(&path)))?;
        note!("wrote the schema snapshot {} (`snapshot` in the config)", show(&path));
    }
    match migrate_build::check(&package.dir, config) {
        Ok(checked) => {
            messages::problems(&checked.warnings);
            say!(
                "checked {}: ok, as `cargo migrate check` and `cargo build` see them",
                count(n, "migration")
            );
            Ok(())
        }
        Err(e) => {
            let problems = Problems::new(&e, "the imported migrations");
            messages::problems(&problems.problems);
            let errors = problems.problems.iter().filter(|p| p.is_error()).count();
            Err(anyhow!(
                "the {} were written, but {} (listed above) fail `cargo migrate check`, so `cargo build` fails too; fix them (a down that does not undo its up is common), then run `cargo migrate check`",
                count(n, "imported migration"),
                count(errors, "problem")
            ))
        }
    }
}
