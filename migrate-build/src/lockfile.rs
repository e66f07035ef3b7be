//! `migrations/migrate.lock`: one line per migration and a chained total on
//! the first line, so that two branches which each add a migration change
//! the same lines and conflict in git when they are merged (config
//! `lock_file = true`).
//!
//! ```text
//! migrate.lock v1 total=<64 hex digits>
//! 0001 create_users up=<64 hex digits> down=<64 hex digits>
//! 0002 backfill up=<64 hex digits> down=-
//! ```
//!
//! - A line per migration, in version order: the version as in its file
//!   names, its name, and the [`Checksum`] of its up and down files (`-`
//!   when it has no down). The up checksum is the one the tracking table
//!   records.
//! - The first line's `total` chains the lines: starting from the checksum
//!   of `migrate.lock v1`, each line's total is the checksum of the previous
//!   total, a space and the line. Every added migration changes it, so two
//!   branches that each add one always change line 1 (and both append at
//!   the end): git cannot merge them silently.
//!
//! The build and `cargo migrate check` verify it ([`verify`]); `cargo
//! migrate new` appends to it ([`add`]); `cargo migrate lock` and
//! `renumber` write it from the files ([`write()`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use migrate_runtime::Checksum;

use crate::problem::{Error, Problem};
use crate::scan::{Found, Kind};

/// The lock file's name, in the migrations directory.
pub const FILE_NAME: &str = "migrate.lock";

/// The first words of the first line: the format and its version.
const HEADER: &str = "migrate.lock v1";

/// What to do about a lock file that does not match.
const RELOCK: &str = "if the change is intended and no database has applied the old text, run `cargo migrate lock`; \
     otherwise restore the file and put the change in a new migration";

/// The lock file of a migrations directory.
#[must_use]
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// One migration's line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// The version as written (zero-padded as in the file names).
    pub version_text: String,
    /// The version.
    pub version: u64,
    /// The name.
    pub name: String,
    /// The checksum of the up file.
    pub up: Checksum,
    /// The checksum of the down file, when it has one.
    pub down: Option<Checksum>,
    /// The 1-based line in the file (0 for an entry not read from a file).
    pub line: usize,
}

impl Entry {
    /// The line of `found`, its version padded to `width` digits.
    #[must_use]
    pub fn of(found: &Found, width: usize) -> Self {
        Self {
            version_text: format!("{:0width$}", found.version),
            version: found.version,
            name: found.name.clone(),
            up: Checksum::of(&found.up.text),
            down: found.down.as_ref().map(|d| Checksum::of(&d.text)),
            line: 0,
        }
    }

    /// `0006_add_phone`: how messages name the migration.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{}_{}", self.version_text, self.name)
    }

    fn text(&self) -> String {
        let down = self.down.map_or_else(|| "-".to_owned(), |d| d.to_string());
        format!("{} {} up={} down={down}", self.version_text, self.name, self.up)
    }

    /// Whether the line records the untouched templates of `cargo migrate
    /// new` (written by `new`, not locked since the SQL was written).
    fn is_template(&self) -> bool {
        let (up_kind, down) = match self.down {
            Some(d) => (Kind::Up, Some(d)),
            None => (Kind::UpOnly, None),
        };
        let template = |kind| Checksum::of(&crate::template(&self.version_text, &self.name, kind));
        self.up == template(up_kind) && down.is_none_or(|d| d == template(Kind::Down))
    }
}

/// The chained total of `entries`: see the [module](self) docs.
fn total(entries: &[Entry]) -> Checksum {
    entries.iter().fold(Checksum::of(HEADER), |acc, e| {
        Checksum::of(&format!("{acc} {}", e.text()))
    })
}

/// The lock file's text for `entries` (sorted by version here).
#[must_use]
pub fn render(entries: &[Entry]) -> String {
    let mut entries = entries.to_vec();
    entries.sort_by_key(|e| e.version);
    let mut out = format!("{HEADER} total={}\n", total(&entries));
    for e in &entries {
        let _ = writeln!(out, "{}", e.text());
    }
    out
}

/// The text of a lock file for `migrations`, versions padded to `width`.
#[must_use]
pub fn render_migrations(migrations: &[Found], width: usize) -> String {
    render(&migrations.iter().map(|m| Entry::of(m, width)).collect::<Vec<_>>())
}

/// Reads a lock file's text: its entries, or the one problem that makes it
/// unreadable (`shown` is its path as messages show it), with its line.
///
/// # Errors
///
/// A merge conflict's markers, a first line that is not the header, a line
/// that is not an entry, entries out of order, or a total that does not
/// match the lines.
pub fn parse(text: &str, shown: &str) -> Result<Vec<Entry>, Problem> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).replace("\r\n", "\n");
    if let Some(at) = text.lines().position(|l| {
        ["<<<<<<<", "=======", ">>>>>>>", "|||||||"]
            .iter()
            .any(|m| l.starts_with(m))
    }) {
        return Err(Problem::error(
            shown,
            at + 1,
            "the lock file has merge conflict markers: two branches added or changed migrations",
        )
        .hint("run `cargo migrate renumber` to give the merged migrations distinct versions (it writes the lock file again), then `cargo migrate check`"));
    }
    let rewrite = "run `cargo migrate lock` to write it again from the migration files (check first with `git diff` that no migration changed by mistake)";
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, l)| l).unwrap_or_default();
    let Some(expected_total) = header
        .strip_prefix(HEADER)
        .and_then(|rest| rest.trim().strip_prefix("total="))
        .and_then(|hex| Checksum::parse(hex.trim()))
    else {
        return Err(Problem::error(
            shown,
            1,
            format!("line 1 is not the lock file's header `{HEADER} total=CHECKSUM`"),
        )
        .hint(rewrite));
    };
    let mut entries: Vec<Entry> = Vec::new();
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let entry = parse_entry(line, line_no).ok_or_else(|| {
            Problem::error(
                shown,
                line_no,
                format!(
                    "line {line_no} is not a migration's line `VERSION NAME up=CHECKSUM down=CHECKSUM|-`: `{}`",
                    short(line)
                ),
            )
            .hint(rewrite)
        })?;
        if let Some(prev) = entries.last()
            && prev.version >= entry.version
        {
            return Err(Problem::error(
                shown,
                line_no,
                format!(
                    "{} comes after {}: the lines must be in ascending version order, each version once",
                    entry.label(),
                    prev.label()
                ),
            )
            .hint(rewrite));
        }
        entries.push(entry);
    }
    if total(&entries) != expected_total {
        return Err(Problem::error(
            shown,
            1,
            "the total on line 1 does not match the lines below it: the lock file was edited by hand",
        )
        .hint(rewrite));
    }
    Ok(entries)
}

fn parse_entry(line: &str, line_no: usize) -> Option<Entry> {
    let mut words = line.split_whitespace();
    let version_text = words.next()?;
    let name = words.next()?;
    let up = words.next()?.strip_prefix("up=").and_then(Checksum::parse)?;
    let down = match words.next()?.strip_prefix("down=")? {
        "-" => None,
        hex => Some(Checksum::parse(hex)?),
    };
    if words.next().is_some() || !version_text.bytes().all(|b| b.is_ascii_digit()) || !crate::file_name::is_name(name) {
        return None;
    }
    Some(Entry {
        version_text: version_text.to_owned(),
        version: version_text.parse().ok().filter(|&v| v > 0)?,
        name: name.to_owned(),
        up,
        down,
        line: line_no,
    })
}

fn short(line: &str) -> String {
    match line.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_owned(),
    }
}

/// Checks the lock file of `dir` against `migrations` (the files read by
/// the scan), as `cargo build` and `cargo migrate check` do: every problem,
/// each at its line (`shown` is the lock file's path in messages).
///
/// A migration whose line still records the untouched template of `cargo
/// migrate new` (its SQL written since, not locked yet) is a warning, so
/// the edit–build loop of a new migration works; `cargo migrate lock`
/// before committing makes it current.
#[must_use]
pub fn verify(dir: &Path, shown: &str, migrations: &[Found]) -> Vec<Problem> {
    let text = match std::fs::read(path(dir)) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return vec![
                Problem::error(
                    shown,
                    0,
                    "the lock file is missing, and lock_file = true in [package.metadata.migrate]",
                )
                .hint("run `cargo migrate lock` to write it, and commit it with the migrations"),
            ];
        }
        Err(e) => return vec![Problem::error(shown, 0, format!("cannot read the lock file: {e}"))],
    };
    let entries = match parse(&text, shown) {
        Ok(entries) => entries,
        Err(p) => return vec![p],
    };
    compare(&entries, shown, migrations)
}

/// The differences between the lock file's `entries` and the files.
fn compare(entries: &[Entry], shown: &str, migrations: &[Found]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for m in migrations {
        let Some(e) = entries.iter().find(|e| e.version == m.version) else {
            problems.push(
                Problem::error(
                    shown,
                    0,
                    format!(
                        "{} is not in the lock file",
                        m.up.display.rsplit('/').next().unwrap_or(&m.name)
                    ),
                )
                .hint(
                    "`cargo migrate new` adds migrations to it; for a file made another way, run `cargo migrate lock`",
                ),
            );
            continue;
        };
        if e.name != m.name {
            problems.push(
                Problem::error(
                    shown,
                    e.line,
                    format!(
                        "{} is locked as `{}`, but its files are called `{}`",
                        e.version_text, e.name, m.name
                    ),
                )
                .hint(RELOCK),
            );
            continue;
        }
        let up_changed = e.up != Checksum::of(&m.up.text);
        let down_changed = e.down != m.down.as_ref().map(|d| Checksum::of(&d.text));
        if !up_changed && !down_changed {
            continue;
        }
        if e.is_template() {
            problems.push(
                Problem::warning(
                    shown,
                    e.line,
                    format!(
                        "{} is locked as the empty template of `cargo migrate new`: its SQL is not locked yet",
                        e.label()
                    ),
                )
                .hint("run `cargo migrate lock` before you commit it"),
            );
            continue;
        }
        let which = match (up_changed, down_changed) {
            (true, true) => "its up and down files",
            (true, false) => "its up file",
            _ if m.down.is_none() => "its down file was removed",
            _ if e.down.is_none() => "a down file was added",
            _ => "its down file",
        };
        problems.push(
            Problem::error(
                shown,
                e.line,
                format!("{} changed since the lock was written ({which})", e.label()),
            )
            .hint(RELOCK),
        );
    }
    for e in entries {
        if !migrations.iter().any(|m| m.version == e.version) {
            problems.push(
                Problem::error(
                    shown,
                    e.line,
                    format!("{} is in the lock file, but its files are not in the migrations directory", e.label()),
                )
                .hint("restore its files (a migration a database has applied must stay), or run `cargo migrate lock` if it was removed on purpose"),
            );
        }
    }
    problems
}

/// Writes the lock file of `dir` for `migrations` (versions padded to
/// `width`) when its bytes change. Returns its path and whether it wrote.
///
/// # Errors
///
/// When the file cannot be written.
pub fn write(dir: &Path, migrations: &[Found], width: usize) -> Result<(PathBuf, bool), Error> {
    let path = path(dir);
    let text = render_migrations(migrations, width);
    let changed = crate::write_if_changed(&path, text.as_bytes())?;
    Ok((path, changed))
}

/// Adds (or replaces) the lines of `added` in the lock file of `dir`,
/// keeping every other line as it is, so a hand edit to another migration
/// is still caught: what `cargo migrate new` does. A missing lock file is
/// created with just these lines. Returns its path and whether it was
/// created.
///
/// # Errors
///
/// The lock file's problem when it does not parse (then it is left as it
/// is), or a failure to read or write it.
pub fn add(dir: &Path, shown: &str, added: &[Found], width: usize) -> Result<(PathBuf, bool), Problem> {
    let path = path(dir);
    let (mut entries, created) = match std::fs::read(&path) {
        Ok(bytes) => (parse(&String::from_utf8_lossy(&bytes), shown)?, false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), true),
        Err(e) => return Err(Problem::error(shown, 0, format!("cannot read the lock file: {e}"))),
    };
    for m in added {
        entries.retain(|e| e.version != m.version);
        entries.push(Entry::of(m, width));
    }
    crate::write_if_changed(&path, render(&entries).as_bytes()).map_err(|e| {
        e.problems()
            .first()
            .cloned()
            .unwrap_or_else(|| Problem::error(shown, 0, "cannot write"))
    })?;
    Ok((path, created))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::SqlFile;

    fn found(version: u64, name: &str, up: &str, down: Option<&str>) -> Found {
        let file = |kind: &str, text: &str| {
            let display = format!("migrations/{version:04}_{name}.{kind}sql");
            SqlFile::new(&display, display.clone(), text)
        };
        Found::new(
            version,
            name,
            file(if down.is_some() { "up." } else { "" }, up),
            down.map(|d| file("down.", d)),
        )
    }

    fn set() -> Vec<Found> {
        vec![
            found(
                1,
                "create_users",
                "CREATE TABLE users (id INTEGER);\n",
                Some("DROP TABLE users;\n"),
            ),
            found(2, "backfill", "UPDATE users SET id = id;\n", None),
        ]
    }

    #[test]
    fn round_trips_and_matches_its_files() {
        let text = render_migrations(&set(), 4);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("migrate.lock v1 total="), "{text}");
        assert!(lines[1].starts_with("0001 create_users up="), "{text}");
        assert!(lines[2].ends_with(" down=-"), "{text}");
        let entries = parse(&text, "migrate.lock").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].line, 3);
        assert!(compare(&entries, "migrate.lock", &set()).is_empty());
        // CRLF (a checkout on Windows) reads the same.
        assert_eq!(parse(&text.replace('\n', "\r\n"), "m").unwrap(), entries);
    }

    #[test]
    fn every_added_migration_changes_the_first_line() {
        let one = render_migrations(&set()[..1], 4);
        let two = render_migrations(&set(), 4);
        let other = render_migrations(&[set()[0].clone(), found(2, "other", "SELECT 1;", None)], 4);
        assert_ne!(one.lines().next(), two.lines().next());
        assert_ne!(two.lines().next(), other.lines().next());
    }

    #[test]
    fn a_changed_migration_is_named_at_its_line() {
        let text = render_migrations(&set(), 4);
        let mut changed = set();
        changed[1].up.text.push_str("-- a comment\n");
        let problems = compare(
            &parse(&text, "migrations/migrate.lock").unwrap(),
            "migrations/migrate.lock",
            &changed,
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string().split(" (help").next().unwrap(),
            "migrations/migrate.lock:3: 0002_backfill changed since the lock was written (its up file)"
        );
    }

    #[test]
    fn nonsense_is_one_problem_with_its_line() {
        let text = render_migrations(&set(), 4);
        let cases = [
            (
                text.replacen("migrate.lock v1", "lock", 1),
                1,
                "is not the lock file's header",
            ),
            (text.replacen(" up=", " up:", 1), 2, "is not a migration's line"),
            (format!("{text}garbage\n"), 4, "is not a migration's line"),
            (
                text.replacen("0001 create_users", "0001 create_userz", 1),
                1,
                "the total on line 1 does not match",
            ),
            (format!("{text}<<<<<<< HEAD\n"), 4, "merge conflict markers"),
            (String::new(), 1, "is not the lock file's header"),
        ];
        for (bad, line, what) in cases {
            let p = parse(&bad, "migrate.lock").unwrap_err();
            assert_eq!(p.line, line, "{p}");
            assert!(p.message.contains(what), "{p}");
            assert!(p.hint.is_some(), "{p}");
        }
    }

    #[test]
    fn missing_extra_and_template_lines() {
        let entries = parse(&render_migrations(&set(), 4), "l").unwrap();
        let problems = compare(&entries, "l", &set()[..1]);
        assert!(
            problems[0]
                .message
                .contains("0002_backfill is in the lock file, but its files are not"),
            "{problems:?}"
        );
        let problems = compare(&entries[..1], "l", &set());
        assert!(
            problems[0]
                .message
                .contains("0002_backfill.sql is not in the lock file"),
            "{problems:?}"
        );
        // A line written by `new` for the template: a warning once the SQL is written.
        let template = found(
            3,
            "add_phone",
            &crate::template("0003", "add_phone", Kind::Up),
            Some(&crate::template("0003", "add_phone", Kind::Down)),
        );
        let mut all = set();
        all.push(template);
        let entries = parse(&render_migrations(&all, 4), "l").unwrap();
        all[2].up.text = "ALTER TABLE users ADD phone TEXT;".to_owned();
        let problems = compare(&entries, "l", &all);
        assert_eq!(problems.len(), 1);
        assert!(!problems[0].is_error(), "{problems:?}");
    }
}
