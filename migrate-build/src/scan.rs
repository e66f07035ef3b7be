//! Reading a migrations directory: file names, pairing, ordering, contents.
//!
//! This is the one place that reads a migrations directory; the build script
//! and `cargo migrate` both come through here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use migrate_runtime::{Checksum, Migration, Script};

use crate::problem::Problem;

/// What a migration file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `{version}_{name}.up.sql`
    Up,
    /// `{version}_{name}.down.sql`
    Down,
    /// `{version}_{name}.sql`: an up migration without a down (irreversible).
    UpOnly,
}

/// A parsed migration file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName {
    /// The version number.
    pub version: u64,
    /// The name part (`[a-z0-9_]+`).
    pub name: String,
    /// Up, down or up-only.
    pub kind: Kind,
}

impl FileName {
    /// The file name for `version` and `name`, zero-padded to `width`
    /// (at most [`MAX_WIDTH`] digits).
    ///
    /// # Examples
    ///
    /// ```
    /// use migrate_build::scan::{FileName, Kind};
    ///
    /// let f = FileName { version: 3, name: "add_email".into(), kind: Kind::Up };
    /// assert_eq!(f.to_file_name(4), "0003_add_email.up.sql");
    /// ```
    pub fn to_file_name(&self, width: usize) -> String {
        let suffix = match self.kind {
            Kind::Up => ".up.sql",
            Kind::Down => ".down.sql",
            Kind::UpOnly => ".sql",
        };
        let width = width.min(MAX_WIDTH);
        format!("{:0width$}_{}{suffix}", self.version, self.name)
    }
}

/// The widest zero-padding: `i64::MAX` has 19 digits.
pub const MAX_WIDTH: usize = 19;

/// The pattern every migration file follows, for messages.
pub const PATTERN: &str = "{version}_{name}.up.sql, {version}_{name}.down.sql or {version}_{name}.sql, with a zero-padded version and a name of a-z, 0-9 and _";

/// Parses a migration file name such as `0003_add_email.up.sql`.
///
/// `width` is the configured zero-padding: a version must have exactly that
/// many digits, or more without a leading zero once it outgrows them.
///
/// # Errors
///
/// A message saying what is wrong with the name and, where one can be
/// guessed, the name it should have.
///
/// # Examples
///
/// ```
/// use migrate_build::scan::{parse_file_name, Kind};
///
/// let f = parse_file_name("0003_add_email.up.sql", 4)?;
/// assert_eq!((f.version, f.name.as_str(), f.kind), (3, "add_email", Kind::Up));
/// assert!(parse_file_name("3-add-email.sql", 4).is_err());
/// # Ok::<(), migrate_build::scan::BadName>(())
/// ```
pub fn parse_file_name(file_name: &str, width: usize) -> Result<FileName, BadName> {
    let width = width.min(MAX_WIDTH);
    let (stem, kind) = if let Some(s) = file_name.strip_suffix(".up.sql") {
        (s, Kind::Up)
    } else if let Some(s) = file_name.strip_suffix(".down.sql") {
        (s, Kind::Down)
    } else if let Some(s) = file_name.strip_suffix(".sql") {
        (s, Kind::UpOnly)
    } else {
        return Err(BadName::new(
            format!("`{file_name}` is not a migration file name"),
            None,
        ));
    };
    let bad = |message: String| BadName::new(message, guess_name(stem, kind, width));
    let digits_end = stem.find(|c: char| !c.is_ascii_digit()).unwrap_or(stem.len());
    let (digits, rest) = stem.split_at(digits_end);
    if digits.is_empty() {
        return Err(bad(format!("`{file_name}` has no version number")));
    }
    let Some(name) = rest.strip_prefix('_') else {
        return Err(bad(format!("`{file_name}` does not start with a version and `_`")));
    };
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(bad(format!(
            "`{file_name}` has an invalid name `{name}`: names use only a-z, 0-9 and _"
        )));
    }
    let version: u64 = digits
        .parse()
        .ok()
        .filter(|&v| i64::try_from(v).is_ok())
        .ok_or_else(|| {
            bad(format!(
                "`{file_name}`: version {digits} is too large (at most {})",
                i64::MAX
            ))
        })?;
    if version == 0 {
        return Err(bad(format!(
            "`{file_name}`: version 0 is not allowed, versions start at 1"
        )));
    }
    let natural = version.to_string().len();
    if digits.len() != width.max(natural) {
        return Err(bad(format!(
            "`{file_name}`: version `{digits}` is not zero-padded to {width} digits"
        )));
    }
    Ok(FileName {
        version,
        name: name.to_owned(),
        kind,
    })
}

/// Why a file name is not a migration file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadName {
    /// What is wrong.
    pub message: String,
    /// The name it should probably have, when one can be guessed.
    pub rename_to: Option<String>,
}

impl BadName {
    fn new(message: String, rename_to: Option<String>) -> Self {
        Self { message, rename_to }
    }

    /// What to do: rename it to the guessed name, or follow the pattern.
    pub fn hint(&self) -> String {
        match &self.rename_to {
            Some(name) => format!("rename it to `{name}`"),
            None => format!("name migrations {PATTERN}"),
        }
    }
}

impl fmt::Display for BadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.hint())
    }
}

/// The name a malformed file name was probably meant to be.
fn guess_name(stem: &str, kind: Kind, width: usize) -> Option<String> {
    let digits: String = stem.chars().take_while(char::is_ascii_digit).collect();
    let version = digits.parse::<u64>().ok().filter(|&v| i64::try_from(v).is_ok())?;
    let name = heck::ToSnakeCase::to_snake_case(stem[digits.len()..].trim_start_matches(['_', '-', ' ', '.']));
    if version == 0
        || name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return None;
    }
    Some(FileName { version, name, kind }.to_file_name(width))
}

/// One file of a migration, read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlFile {
    /// The file's path on disk.
    pub path: PathBuf,
    /// The path shown to users, relative to the package when inside it.
    pub display: String,
    /// The file's text.
    pub text: String,
    /// The `-- migrate:no-transaction` directive.
    pub no_transaction: bool,
}

impl SqlFile {
    fn script(&self) -> Script {
        Script::new(self.text.clone(), self.display.clone()).with_no_transaction(self.no_transaction)
    }
}

/// One migration found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// The checksum of the up file, as the runtime records it.
    pub fn checksum(&self) -> Checksum {
        Checksum::of(&self.up.text)
    }

    /// The migration as the runtime applies it.
    pub fn to_migration(&self) -> Migration {
        let m = Migration::new(self.version, self.name.clone(), self.up.script());
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
pub(crate) fn display_path(path: &Path, base: &Path) -> String {
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
        by_version
            .entry(parsed.version)
            .or_default()
            .push((parsed, shown, file));
    }
    pair(by_version, width, &mut scan);
    scan
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
            let line = e.as_bytes()[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
            problems.push(
                Problem::error(&shown, line, "the file is not valid UTF-8")
                    .hint("save it as UTF-8 (SQL files are text; a Latin-1 or UTF-16 editor setting does this)"),
            );
            return None;
        }
    };
    let no_transaction = directives(&text, &shown, problems)?;
    if migrate_runtime::statement_lines(text.trim_start_matches('\u{feff}')).is_empty() {
        let what = if kind == Kind::Down { "down" } else { "up" };
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
    Some(SqlFile {
        path: path.to_owned(),
        display: shown,
        text,
        no_transaction,
    })
}

/// The directives a file may carry.
pub const DIRECTIVES: &[&str] = &["no-transaction"];

/// Reads `-- migrate:…` directives from the comment lines at the top of a
/// file (`shown` names it in problems). Returns whether `no-transaction` is
/// set, or `None` after adding a problem for each unknown or misplaced
/// directive to `problems`.
///
/// # Examples
///
/// ```
/// let mut problems = Vec::new();
/// let sql = "-- migrate:no-transaction\nVACUUM;\n";
/// assert_eq!(migrate_build::scan::directives(sql, "0002_vacuum.sql", &mut problems), Some(true));
/// assert_eq!(migrate_build::scan::directives("-- migrate:nope\n", "f.sql", &mut problems), None);
/// assert_eq!(problems[0].line, 1);
/// ```
pub fn directives(text: &str, shown: &str, problems: &mut Vec<Problem>) -> Option<bool> {
    let mut no_transaction = false;
    let mut header = true;
    let mut ok = true;
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let trimmed = line.trim();
        // `-- migrate:NAME`: one word after the colon. A comment that merely
        // starts with "Migrate:" followed by prose is not a directive.
        let directive = trimmed
            .strip_prefix("--")
            .map(str::trim_start)
            .and_then(|rest| {
                rest.get(..8)
                    .filter(|p| p.eq_ignore_ascii_case("migrate:"))
                    .map(|_| rest[8..].trim())
            })
            .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace));
        match directive {
            Some(name) if !header => {
                problems.push(
                    Problem::error(
                        shown,
                        i + 1,
                        format!("directive `-- migrate:{name}` comes after SQL, where it would be ignored"),
                    )
                    .hint("move it to the top of the file, before any SQL"),
                );
                ok = false;
            }
            Some("no-transaction") => no_transaction = true,
            Some(name) => {
                problems.push(
                    Problem::error(shown, i + 1, format!("unknown directive `-- migrate:{name}`")).hint(format!(
                        "the known directives are: {}",
                        DIRECTIVES
                            .iter()
                            .map(|d| format!("-- migrate:{d}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
                ok = false;
            }
            None if trimmed.is_empty() || trimmed.starts_with("--") => {}
            None => header = false,
        }
    }
    ok.then_some(no_transaction)
}

/// A file whose name parsed: its name, where it is shown, and its contents
/// when they could be read and passed the checks.
type Named = (FileName, String, Option<SqlFile>);

/// Pairs up and down files, and reports duplicates, orphans and gaps.
fn pair(by_version: BTreeMap<u64, Vec<Named>>, width: usize, scan: &mut Scan) {
    let renumber =
        "two branches added the same version? run `cargo migrate renumber` to move the unapplied one to the end";
    let mut previous: Option<u64> = None;
    for (version, files) in by_version {
        let (downs, ups): (Vec<Named>, Vec<Named>) = files.into_iter().partition(|(f, ..)| f.kind == Kind::Down);
        let mut usable = true;
        if ups.len() > 1 {
            let names: Vec<_> = ups.iter().map(|(_, shown, _)| format!("`{shown}`")).collect();
            for (_, shown, _) in ups.iter().skip(1) {
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
        for (down_name, down_shown, _) in &downs {
            match ups.iter().find(|(u, ..)| u.name == down_name.name) {
                Some((u, up_shown, _)) if u.kind == Kind::UpOnly => {
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
        let Some((up_name, up_shown, up)) = ups.into_iter().next() else {
            // Only downs: reported above.
            continue;
        };
        if let Some(prev) = previous
            && version > prev + 1
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
            Some((_, _, Some(d))) => Some(d),
            Some((_, _, None)) => continue,
        };
        scan.migrations.push(Found {
            version,
            name: up_name.name,
            up,
            down,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        let f = parse_file_name("0001_create_users.down.sql", 4).unwrap();
        assert_eq!((f.version, f.kind), (1, Kind::Down));
        let f = parse_file_name("12345_big.sql", 4).unwrap();
        assert_eq!((f.version, f.kind), (12345, Kind::UpOnly));
        assert_eq!(parse_file_name("000001_x.sql", 6).unwrap().version, 1);
    }

    #[test]
    fn rejects_with_guesses() {
        let e = parse_file_name("3-add-email.sql", 4).unwrap_err();
        assert_eq!(e.rename_to.as_deref(), Some("0003_add_email.sql"), "{e}");
        let e = parse_file_name("0003_Add-Email.up.sql", 4).unwrap_err();
        assert_eq!(e.rename_to.as_deref(), Some("0003_add_email.up.sql"), "{e}");
        let e = parse_file_name("3_add.sql", 4).unwrap_err();
        assert!(e.message.contains("not zero-padded to 4 digits"), "{e}");
        assert!(parse_file_name("00003_add.sql", 4).is_err());
        assert!(
            parse_file_name("0000_zero.sql", 4)
                .unwrap_err()
                .message
                .contains("version 0")
        );
        assert!(parse_file_name("0003_.sql", 4).is_err());
        assert!(
            parse_file_name("99999999999999999999_x.sql", 4)
                .unwrap_err()
                .message
                .contains("too large")
        );
        assert!(parse_file_name("0003_add_email.up.sql.bak", 4).is_err());
    }

    #[test]
    fn fuzz_regressions() {
        // fuzz/regressions/file_name: a huge width, a version past i64::MAX.
        assert!(parse_file_name("\u{2d}|3q.sql", usize::MAX).is_err());
        let e = parse_file_name("\u{1}9223372036857475807ax.sql", 4).unwrap_err();
        assert!(e.rename_to.is_none(), "{e}");
        let e = parse_file_name("9223372036857475807-ax.sql", 4).unwrap_err();
        assert!(e.rename_to.is_none(), "{e}");
    }

    #[test]
    fn directive_parsing() {
        let mut p = Vec::new();
        assert_eq!(
            directives("-- migrate:no-transaction\nVACUUM;", "f", &mut p),
            Some(true)
        );
        assert_eq!(directives("--migrate:no-transaction\n", "f", &mut p), Some(true));
        assert_eq!(directives("-- just a comment\nSELECT 1;", "f", &mut p), Some(false));
        assert!(p.is_empty());
        assert_eq!(directives("-- migrate:no-transactoin\n", "f", &mut p), None);
        assert_eq!(p[0].line, 1);
        assert!(p[0].message.contains("unknown directive"));
        p.clear();
        assert_eq!(directives("SELECT 1;\n-- migrate:no-transaction\n", "f", &mut p), None);
        assert_eq!(p[0].line, 2);
    }
}
