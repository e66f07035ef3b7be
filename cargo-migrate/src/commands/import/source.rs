//! What every converter reads a directory into, and the helpers they share:
//! listing a directory, reading a file, the one-line layout error.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use heck::ToSnakeCase;

use crate::package::show;

/// One migration of the other tool, converted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// Its version as the tool records it in its tracking table
    /// (`20240101120000`, `1.1`): the key of `imported.toml`.
    pub source_version: String,
    /// Our name for it (`[a-z0-9_]+`).
    pub name: String,
    /// The up SQL, without the tool's markers.
    pub up: String,
    /// The down SQL, when it has one with a statement.
    pub down: Option<String>,
    /// The up script runs outside a transaction.
    pub up_no_transaction: bool,
    /// The down script runs outside a transaction.
    pub down_no_transaction: bool,
    /// Its files, relative to the source directory.
    pub files: Vec<String>,
}

impl Imported {
    /// A migration with an up script only, in a transaction.
    pub fn new(source_version: impl Into<String>, description: &str, up: String, file: String) -> Self {
        Self {
            source_version: source_version.into(),
            name: name(description),
            up,
            down: None,
            up_no_transaction: false,
            down_no_transaction: false,
            files: vec![file],
        }
    }

    /// Sets the down script, unless it has no statement (an empty down is
    /// no down: the migration cannot be rolled back).
    pub fn with_down(mut self, down: Option<String>, file: Option<String>) -> Self {
        if let Some(file) = file {
            self.files.push(file);
        }
        self.down = down.filter(|d| !migrate_runtime::statement_lines(d).is_empty());
        self
    }
}

/// A file that cannot be converted, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unconvertible {
    /// The file, relative to the source directory.
    pub file: String,
    /// Why (and what to do), one line.
    pub why: String,
}

/// A source directory, read.
#[derive(Clone, Debug, Default)]
pub struct Converted {
    /// The migrations, in the order the tool applies them.
    pub migrations: Vec<Imported>,
    /// What cannot be converted.
    pub unconvertible: Vec<Unconvertible>,
    /// Files that are not migrations and were left alone (a README).
    pub ignored: Vec<String>,
}

impl Converted {
    /// Notes `file` as not convertible.
    pub fn refuse(&mut self, file: &str, why: impl Into<String>) {
        self.unconvertible.push(Unconvertible {
            file: file.to_owned(),
            why: why.into(),
        });
    }
}

/// An entry of the source directory.
pub struct Entry {
    /// Its file name.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// The entries of `dir`, sorted by name, without hidden ones (`.gitkeep`).
pub fn entries(dir: &Path) -> Result<Vec<Entry>> {
    let read = std::fs::read_dir(dir).with_context(|| format!("cannot read {}", show(dir)))?;
    let mut out = Vec::new();
    for entry in read {
        let entry = entry.with_context(|| format!("cannot read {}", show(dir)))?;
        let Ok(name) = entry.file_name().into_string() else {
            return Err(anyhow!(
                "{}: a file name that is not UTF-8; rename it",
                show(&entry.path())
            ));
        };
        if name.starts_with('.') {
            continue;
        }
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push(Entry {
            name,
            path: entry.path(),
            is_dir,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The text of a migration file.
pub fn read(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", show(path)))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("{}: not UTF-8 text; save it as UTF-8 and import again", show(path)))?;
    Ok(text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text))
}

/// The error for a file that does not fit the tool's layout: names it,
/// says what was expected, and what to do.
pub fn misfit(path: &Path, tool: &str, expected: &str) -> anyhow::Error {
    anyhow!(
        "{}: not in {tool}'s layout: expected {expected}; is --from right? Rename or move the file, then import again; nothing was written",
        show(path)
    )
}

/// Our name for a description: snake case, `[a-z0-9_]` only.
pub fn name(description: &str) -> String {
    let snake = description.to_snake_case();
    let clean: String = snake
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
        .collect();
    let clean = clean.trim_matches('_').to_owned();
    if clean.is_empty() {
        "migration".to_owned()
    } else {
        clean
    }
}

/// The digits at the start of `s` and the rest after the separator `sep`:
/// `("20240101", "create_users.sql")`.
pub fn split_version<'a>(s: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let (version, rest) = s.split_once(sep)?;
    (!version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())).then_some((version, rest))
}

/// `s` without its leading zeros (`0` stays `0`): the number an integer
/// version column records.
pub fn number(s: &str) -> String {
    let trimmed = s.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The lines of `text` between markers, for the tools that put up and
/// down in one file (dbmate, goose): calls `marker` on each line; a line
/// it recognises switches sections (and is dropped).
pub fn sections<S: Copy + PartialEq>(
    text: &str,
    start: S,
    mut marker: impl FnMut(&str) -> Option<S>,
) -> Vec<(S, String)> {
    let mut out: Vec<(S, String)> = vec![(start, String::new())];
    for line in text.split_inclusive('\n') {
        if let Some(section) = marker(line.trim()) {
            out.push((section, String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(name("create users table"), "create_users_table");
        assert_eq!(name("Add-Email"), "add_email");
        assert_eq!(name("café au lait"), "caf_au_lait");
        assert_eq!(name("!!!"), "migration");
        assert_eq!(number("00012"), "12");
        assert_eq!(number("000"), "0");
        assert_eq!(split_version("001_x.sql", "_"), Some(("001", "x.sql")));
        assert_eq!(split_version("x_001.sql", "_"), None);
    }
}
