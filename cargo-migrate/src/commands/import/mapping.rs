//! `migrations/imported.toml`: which migration of the other tool each of
//! ours is, written by `import` and read by `import --database` (and
//! kept in version control, next to the migrations it describes).

use std::path::Path;

use anyhow::{Context as _, Result, anyhow, bail};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use crate::package::show;

/// The file's name, in the migrations directory.
pub const FILE: &str = "imported.toml";

/// One migration: ours and the tool's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Our version.
    pub version: u64,
    /// Our name.
    pub name: String,
    /// The version the tool records.
    pub from_version: String,
    /// Its files in the source directory.
    pub files: Vec<String>,
}

/// The whole file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The tool (`sqlx`, …).
    pub from: String,
    /// The source directory, as given.
    pub source: String,
    /// Oldest first.
    pub migrations: Vec<Entry>,
    /// Files left out (`--partial`), with why.
    pub skipped: Vec<(String, String)>,
}

impl Mapping {
    /// `(the tool's version, ours)`, oldest first.
    pub fn pairs(&self) -> Vec<(String, u64)> {
        self.migrations
            .iter()
            .map(|e| (e.from_version.clone(), e.version))
            .collect()
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let mut doc = DocumentMut::new();
        doc.insert("from", value(&self.from));
        doc.insert("source", value(&self.source));
        let mut list = ArrayOfTables::new();
        for e in &self.migrations {
            let mut t = Table::new();
            t.insert("version", value(i64::try_from(e.version).unwrap_or(i64::MAX)));
            t.insert("name", value(&e.name));
            t.insert("from_version", value(&e.from_version));
            t.insert("files", value(e.files.iter().collect::<Array>()));
            list.push(t);
        }
        doc.insert("migration", Item::ArrayOfTables(list));
        if !self.skipped.is_empty() {
            let mut list = ArrayOfTables::new();
            for (file, why) in &self.skipped {
                let mut t = Table::new();
                t.insert("file", value(file));
                t.insert("why", value(why));
                list.push(t);
            }
            doc.insert("skipped", Item::ArrayOfTables(list));
        }
        format!(
            "# Written by `cargo migrate import --from {}`: which migration of {} each of ours is.\n\
             # `cargo migrate import --from {} --database URL` reads it to take over a database's history.\n{doc}",
            self.from, self.from, self.from
        )
    }

    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let shown = show(path);
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
        let bad = |what: &str| {
            anyhow!(
                "{shown}: {what}; it is written by `cargo migrate import`: restore it from version control, or import again into an empty directory"
            )
        };
        let doc: DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| bad(&format!("not valid TOML ({})", e.message())))?;
        let text_of = |t: &dyn toml_edit::TableLike, key: &str| t.get(key).and_then(Item::as_str).map(str::to_owned);
        let from = text_of(doc.as_table(), "from").ok_or_else(|| bad("no `from`"))?;
        let source = text_of(doc.as_table(), "source").unwrap_or_default();
        let mut migrations = Vec::new();
        if let Some(list) = doc.get("migration").and_then(Item::as_array_of_tables) {
            for t in list {
                let version = t
                    .get("version")
                    .and_then(Item::as_integer)
                    .and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(|| bad("a [[migration]] without a positive `version`"))?;
                migrations.push(Entry {
                    version,
                    name: text_of(t, "name").unwrap_or_default(),
                    from_version: text_of(t, "from_version")
                        .ok_or_else(|| bad("a [[migration]] without `from_version`"))?,
                    files: t
                        .get("files")
                        .and_then(Item::as_array)
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default(),
                });
            }
        }
        if migrations.windows(2).any(|w| w[0].version >= w[1].version) {
            bail!(bad("the [[migration]] versions are not in ascending order"));
        }
        Ok(Self {
            from,
            source,
            migrations,
            skipped: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Mapping {
            from: "flyway".into(),
            source: "sql".into(),
            migrations: vec![Entry {
                version: 1,
                name: "create \"users\"".into(),
                from_version: "1.1".into(),
                files: vec!["V1_1__create.sql".into()],
            }],
            skipped: vec![("R__views.sql".into(), "repeatable".into())],
        };
        let dir = std::env::temp_dir().join(format!("imported-{}.toml", std::process::id()));
        std::fs::write(&dir, m.to_toml()).unwrap();
        let back = Mapping::read(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(back.migrations, m.migrations);
        assert_eq!(back.pairs(), [("1.1".to_owned(), 1)]);
    }
}
