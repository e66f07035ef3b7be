//! Reading a migrations directory: file names, pairing, ordering, contents.
//!
//! This is the one place that reads a migrations directory; the build script
//! and `cargo migrate` both come through here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use migrate_runtime::{Checksum, Migration, Script};

pub use crate::directives::{DIRECTIVES, directives};
use crate::file_name::is_timestamp;
pub use crate::file_name::{BadName, FileName, Kind, MAX_WIDTH, PATTERN, parse_file_name};
use crate::problem::Problem;

/// One file of a migration, read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqlFile {
    /// The file's path on disk.
    pub path: PathBuf,
    /// The path shown to users, relative to the package when inside it.
    pub display: String,
    /// The file's text.
    pub text: String,
    /// The `-- migrate:no-transaction` directive.
    pub no_transaction: bool,
    /// The `-- migrate:phase` directive (up files only).
    pub phase: Option<migrate_runtime::Phase>,
    /// The `-- migrate:contract-of` directive: the expand's version and
    /// the directive's line.
    pub contract_of: Option<(u64, usize)>,
    /// The `-- migrate:batch N` directive (up files only): rows per
    /// batch, and the directive's line.
    pub batch: Option<(u64, usize)>,
}

impl SqlFile {
    /// A file at `path`, shown to users as `display`, holding `text`,
    /// without directives.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>, display: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            display: display.into(),
            text: text.into(),
            no_transaction: false,
            phase: None,
            contract_of: None,
            batch: None,
        }
    }

    fn script(&self) -> Script {
        let script = Script::new(self.text.clone(), self.display.clone()).with_no_transaction(self.no_transaction);
        match self.batch {
            Some((rows, _)) => script.with_batch(rows),
            None => script,
        }
    }
}

/// One migration found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Found {
    /// The version.
    pub version: u64,
    /// The name.
    pub name: String,
    /// The up file (`.up.sql` or `.sql`).
    pub up: SqlFile,
    /// The down file, if there is one.
    pub down: Option<SqlFile>,
}

impl Found {
    /// Migration `version` `name` with its up file and, when it has one,
    /// its down file.
    #[must_use]
    pub fn new(version: u64, name: impl Into<String>, up: SqlFile, down: Option<SqlFile>) -> Self {
        Self {
            version,
            name: name.into(),
            up,
            down,
        }
    }

    /// The checksum of the up file, as the runtime records it.
    pub fn checksum(&self) -> Checksum {
        Checksum::of(&self.up.text)
    }

    /// The migration as the runtime applies it.
    pub fn to_migration(&self) -> Migration {
        let mut m = Migration::new(self.version, self.name.clone(), self.up.script());
        if let Some(phase) = self.up.phase {
            m = m.with_phase(phase);
        }
        if let Some((expand, _)) = self.up.contract_of {
            m = m.with_contract_of(expand);
        }
        match &self.down {
            Some(down) => m.with_down(down.script()),
            None => m,
        }
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.version, self.name)
    }
}

/// What [`scan`] found: the migrations that could be read, and every problem.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Scan {
    /// Migrations in version order. When two share a version, neither is here.
    pub migrations: Vec<Found>,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
}

impl Scan {
    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }
}

/// `path` relative to `base` when inside it, with `/` separators.
pub fn display_path(path: &Path, base: &Path) -> String {
    let shown = path.strip_prefix(base).unwrap_or(path);
    let mut s = shown.to_string_lossy().into_owned();
    if std::path::MAIN_SEPARATOR != '/' {
        s = s.replace(std::path::MAIN_SEPARATOR, "/");
    }
    s
}

/// Whether a file name looks like it was meant to be a migration, so that
/// a malformed one is reported rather than ignored.
fn meant_as_migration(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".sql") || lower.contains(".sql") || name.starts_with(|c: char| c.is_ascii_digit())
}

/// Reads the migrations directory `dir`, showing paths relative to `base`
/// (the package directory), with versions zero-padded to `width`.
///
/// Every `.sql` file must follow the [`PATTERN`]; other files (a README, a
/// `.gitkeep`) are ignored. All problems are collected.
pub fn scan(dir: &Path, base: &Path, width: usize) -> Scan {
    scan_except(dir, base, width, None)
}

/// [`scan`], leaving out the file at `skip` (the schema snapshot, which may
/// live in the migrations directory).
pub(crate) fn scan_except(dir: &Path, base: &Path, width: usize, skip: Option<&Path>) -> Scan {
    let mut scan = Scan::default();
    let shown_dir = display_path(dir, base);
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            scan.problems.push(
                Problem::error(&shown_dir, 0, "the migrations directory is a file, not a directory")
                    .hint("set dir in [package.metadata.migrate] to the directory of migration files"),
            );
            return scan;
        }
        Err(e) => {
            scan.problems.push(
                Problem::error(&shown_dir, 0, format!("cannot read the migrations directory: {e}"))
                    .hint("create it with `cargo migrate init`, or set dir in [package.metadata.migrate]"),
            );
            return scan;
        }
    }
    let mut by_version: BTreeMap<u64, Vec<Named>> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1).max_depth(1).sort_by_file_name() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map_or_else(|| shown_dir.clone(), |p| display_path(p, base));
                scan.problems.push(Problem::error(path, 0, format!("cannot read: {e}")));
                continue;
            }
        };
        let path = entry.path();
        if skip.is_some_and(|skip| skip == path) {
            continue;
        }
        let shown = display_path(path, base);
        let Some(file_name) = entry.file_name().to_str() else {
            if meant_as_migration(&entry.file_name().to_string_lossy()) {
                scan.problems.push(
                    Problem::error(&shown, 0, "the file name is not valid UTF-8")
                        .hint(format!("rename it to follow {PATTERN}")),
                );
            }
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        // Follow symlinks: a link to a migration file is a migration file.
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                scan.problems.push(
                    Problem::error(&shown, 0, format!("cannot read: {e}"))
                        .hint("a symlink must point at an existing file"),
                );
                continue;
            }
        };
        if meta.is_dir() {
            if dir_has_sql(path) || parse_file_name(&format!("{file_name}.sql"), 1).is_ok() {
                scan.problems.push(
                    Problem::error(&shown, 0, "a directory where migration files were expected (diesel's `NAME/up.sql` layout?)")
                        .hint(format!("migrations are files directly in `{shown_dir}`: move `{file_name}/up.sql` to `{{version}}_{{name}}.up.sql` and `down.sql` to `{{version}}_{{name}}.down.sql`")),
                );
            }
            continue;
        }
        if !meant_as_migration(file_name) {
            continue;
        }
        let parsed = match parse_file_name(file_name, width) {
            Ok(p) => p,
            Err(bad) => {
                let hint = if bad.rename_to.is_some() {
                    bad.hint()
                } else if file_name.to_ascii_lowercase().ends_with(".sql") {
                    format!("every .sql file in `{shown_dir}` is a migration: name it {PATTERN}")
                } else {
                    format!("move or delete it: only migrations and non-SQL files (README.md) belong in `{shown_dir}`")
                };
                scan.problems.push(Problem::error(&shown, 0, bad.message).hint(hint));
                continue;
            }
        };
        // A file that cannot be read still pairs with its partner, so one
        // problem is not reported again as "a down without an up".
        let file = read_sql_file(path, shown.clone(), parsed.kind, &mut scan.problems);
        by_version.entry(parsed.version).or_default().push(Named {
            name: parsed,
            shown,
            file,
        });
    }
    if let Some(example) = by_version
        .iter()
        .find(|(v, _)| is_timestamp(**v))
        .and_then(|(_, files)| files.iter().find(|n| n.name.kind != Kind::Down).or(files.first()))
    {
        scan.problems.push(
            Problem::error(
                &shown_dir,
                0,
                format!(
                    "the versions look like timestamps (`{}`, sqlx/diesel style); cargo-migrate numbers migrations consecutively, 1, 2, 3, …",
                    example.shown
                ),
            )
            .hint("run `cargo migrate renumber --consecutive` to renumber them 0001, 0002, … in their current order"),
        );
    }
    let versions: Vec<u64> = by_version.keys().copied().collect();
    pair(by_version, width, &mut scan);
    check_contracts(&scan.migrations, &versions, &mut scan.problems);
    scan
}

/// Each contract names an expand migration that exists and comes before
/// it. `versions` are every version a file has, read or not: a file with
/// problems of its own was reported already.
fn check_contracts(migrations: &[Found], versions: &[u64], problems: &mut Vec<Problem>) {
    use migrate_runtime::Phase;
    for m in migrations {
        let Some((expand, line)) = m.up.contract_of else {
            continue;
        };
        let shown = &m.up.display;
        let directive = format!("`-- migrate:contract-of {expand}`");
        let problem = match migrations.iter().find(|e| e.version == expand) {
            None if versions.contains(&expand) => continue,
            None => Problem::error(shown, line, format!("{directive}: there is no migration {expand}")).hint(
                "name the version of the `-- migrate:phase expand` migration this contract completes (a contract without its expand is data loss)",
            ),
            _ if expand >= m.version => Problem::error(
                shown,
                line,
                format!("{directive} names a version that does not come before this migration ({})", m.version),
            )
            .hint("a contract completes an expand applied before it; name an earlier `-- migrate:phase expand` migration"),
            Some(e) if e.up.phase != Some(Phase::Expand) => Problem::error(
                shown,
                line,
                format!("{directive}: migration {expand} `{}` is not an expand", e.up.display),
            )
            .hint(format!(
                "add `-- migrate:phase expand` at the top of `{}` if it only adds what the new code needs, or name the expand this contract completes",
                e.up.display
            )),
            Some(_) => continue,
        };
        problems.push(problem);
    }
}

fn dir_has_sql(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().to_ascii_lowercase().ends_with(".sql"))
    })
}

/// Reads a file, checks its encoding, directives and emptiness.
/// The largest migration file: the SQL is embedded in the app's binary.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

fn read_sql_file(path: &Path, shown: String, kind: Kind, problems: &mut Vec<Problem>) -> Option<SqlFile> {
    if let Ok(meta) = std::fs::metadata(path)
        && meta.len() > MAX_FILE_SIZE
    {
        problems.push(
            Problem::error(
                &shown,
                0,
                format!(
                    "the file is {} MiB, more than the {} MiB a migration may have (its SQL is embedded in the app's binary)",
                    meta.len() / (1024 * 1024),
                    MAX_FILE_SIZE / (1024 * 1024)
                ),
            )
            .hint("load bulk data at run time (or with the sqlite3 shell's .import), and keep the migration to the schema"),
        );
        return None;
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            problems.push(
                Problem::error(&shown, 0, format!("cannot read: {e}"))
                    .hint("check the file's permissions (the build needs to read every migration)"),
            );
            return None;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let line = crate::line_at(e.as_bytes(), valid);
            problems.push(
                Problem::error(&shown, line, "the file is not valid UTF-8")
                    .hint("save it as UTF-8 (SQL files are text; a Latin-1 or UTF-16 editor setting does this)"),
            );
            return None;
        }
    };
    let found = crate::directives::parse(&text, &shown, problems)?;
    let no_transaction = found.no_transaction;
    if kind == Kind::Down
        && let Some(line) = found.phase.map(|p| p.1).or(found.contract_of.map(|c| c.1))
    {
        problems.push(
            Problem::error(&shown, line, "a phase directive in a down file")
                .hint("put `-- migrate:phase` and `-- migrate:contract-of` at the top of the up file"),
        );
        return None;
    }
    if let Some((_, line)) = found.batch {
        if kind == Kind::Down {
            problems.push(
                Problem::error(&shown, line, "`-- migrate:batch` in a down file")
                    .hint("a batched backfill is an up-only migration: put `-- migrate:batch N` at the top of its `.sql` file, and delete the down file"),
            );
            return None;
        }
        if let Err(e) = migrate_runtime::Backfill::parse(text.trim_start_matches('\u{feff}')) {
            problems.push(Problem::error(&shown, e.line, format!("`-- migrate:batch`: {}", e.message)).hint(e.hint));
            return None;
        }
    }
    if migrate_runtime::statement_lines(text.trim_start_matches('\u{feff}')).is_empty() {
        let what = if kind == Kind::Down { "down" } else { "up" };
        let file_name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        if crate::template::is_untouched(&file_name, &text, kind) {
            problems.push(
                Problem::error(&shown, 1, format!("the {what} migration is still the template of `cargo migrate new`"))
                    .hint(if kind == Kind::Down {
                        "write the SQL that undoes the up migration, or delete the file to make the migration irreversible"
                    } else {
                        "write the migration's SQL (it would otherwise be recorded as applied and the SQL written later would never run); put `SELECT 1;` in it if it is meant to do nothing"
                    }),
            );
            return None;
        }
        if text.trim_start_matches('\u{feff}').trim().is_empty() {
            problems.push(
                Problem::error(&shown, 0, format!("the {what} migration is empty")).hint(if kind == Kind::Down {
                    "write the SQL that undoes the up migration, or delete the file to make the migration irreversible"
                } else {
                    "write the migration's SQL, or delete the file"
                }),
            );
            return None;
        }
        problems.push(
            Problem::warning(
                &shown,
                1,
                format!("the {what} migration has only comments, so it does nothing"),
            )
            .hint("a forgotten template? write its SQL; if the no-op is intended, ignore this"),
        );
    }
    let no_transaction = no_transaction || found.batch.is_some();
    crate::checks::warnings(text.trim_start_matches('\u{feff}'), &shown, no_transaction, problems);
    Some(SqlFile {
        path: path.to_owned(),
        display: shown,
        text,
        no_transaction,
        phase: found.phase.map(|p| p.0),
        contract_of: found.contract_of,
        batch: found.batch,
    })
}

/// A file whose name parsed.
struct Named {
    /// Its parsed name.
    name: FileName,
    /// Its path as shown to users.
    shown: String,
    /// Its contents, when they could be read and passed the checks.
    file: Option<SqlFile>,
}

/// Pairs up and down files, and reports duplicates, orphans and gaps.
fn pair(by_version: BTreeMap<u64, Vec<Named>>, width: usize, scan: &mut Scan) {
    let renumber =
        "two branches added the same version? run `cargo migrate renumber` to move the unapplied one to the end";
    let mut previous: Option<u64> = None;
    for (version, files) in by_version {
        let (downs, ups): (Vec<Named>, Vec<Named>) = files.into_iter().partition(|n| n.name.kind == Kind::Down);
        let mut usable = true;
        if ups.len() > 1 {
            let names: Vec<_> = ups.iter().map(|n| format!("`{}`", n.shown)).collect();
            for Named { shown, .. } in ups.iter().skip(1) {
                scan.problems.push(
                    Problem::error(
                        shown,
                        0,
                        format!("duplicate version {version}: {}", names.join(" and ")),
                    )
                    .hint(renumber),
                );
            }
            usable = false;
        }
        for Named {
            name: down_name,
            shown: down_shown,
            ..
        } in &downs
        {
            match ups.iter().find(|u| u.name.name == down_name.name) {
                Some(Named {
                    name: u,
                    shown: up_shown,
                    ..
                }) if u.kind == Kind::UpOnly => {
                    let paired = FileName {
                        kind: Kind::Up,
                        ..u.clone()
                    };
                    scan.problems.push(
                        Problem::error(down_shown, 0, "a down file for an up-only migration").hint(format!(
                            "rename `{up_shown}` to `{}` so the two pair up",
                            paired.to_file_name(width)
                        )),
                    );
                    usable = false;
                }
                Some(_) => {}
                None => {
                    let expected = FileName {
                        kind: Kind::Up,
                        ..down_name.clone()
                    };
                    scan.problems.push(
                        Problem::error(down_shown, 0, "a down migration without an up migration").hint(format!(
                            "add `{}`, or delete the down file",
                            expected.to_file_name(width)
                        )),
                    );
                    usable = false;
                }
            }
        }
        let Some(Named {
            name: up_name,
            shown: up_shown,
            file: up,
        }) = ups.into_iter().next()
        else {
            // Only downs: reported above.
            continue;
        };
        // Timestamps were reported once for the directory, not as gaps.
        if let Some(prev) = previous
            && version > prev + 1
            && !is_timestamp(version)
            && !is_timestamp(prev)
        {
            let missing = if version == prev + 2 {
                format!("version {} is missing", prev + 1)
            } else {
                format!("versions {} to {} are missing", prev + 1, version - 1)
            };
            scan.problems.push(
                Problem::error(
                    &up_shown,
                    0,
                    format!("gap in the sequence before version {version}: {missing}"),
                )
                .hint(
                    "renumber the migrations so versions are consecutive (a deleted migration that was never applied?)",
                ),
            );
        }
        previous = Some(version);
        let down = downs.into_iter().next();
        // Files with problems of their own were reported when read.
        let (Some(up), true) = (up, usable) else {
            continue;
        };
        let down = match down {
            None => None,
            Some(Named { file: Some(d), .. }) => Some(d),
            Some(Named { file: None, .. }) => continue,
        };
        if let (Some(down), Some((_, line))) = (&down, up.batch) {
            scan.problems.push(
                Problem::error(&up.display, line, format!("`-- migrate:batch` on a migration with a down file (`{}`)", down.display))
                    .hint("a batched backfill is up-only: delete the down file (rolling back past it is then refused), or drop `-- migrate:batch` to run the UPDATE in one transaction with its down"),
            );
            continue;
        }
        scan.migrations.push(Found {
            version,
            name: up_name.name,
            up,
            down,
        });
    }
}
