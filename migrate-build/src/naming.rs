//! Rust identifiers for the generated module, made from migration, table
//! and column names.
//!
//! # Rules
//!
//! - `Version` variants: the migration name in UpperCamelCase
//!   (`add_email` → `AddEmail`). A name that starts with a digit gets a `V`
//!   in front (`2fa` → `V2fa`); an empty one becomes `V{version}`. When two
//!   migrations would get the same variant (or `Self`), each gets
//!   `V{version}` appended (`AddEmailV3`, `AddEmailV7`).
//! - `schema` modules: the table name in snake_case, letters other than
//!   ASCII becoming `_`; a leading digit gets `t_` in front, a Rust keyword
//!   gets `_` appended (`type_`).
//! - column constants: the column name in SHOUTY_SNAKE_CASE by the same
//!   rules (a leading digit gets `C_`); a column that would be `TABLE`
//!   (which names the table) becomes `TABLE_`.
//!
//! # Collisions: a name never moves
//!
//! When two tables (or two columns of a table) would get the same
//! identifier (`user_s` and `"user-s"`), the one that appeared first in
//! migration order keeps the plain identifier and later ones get `_2`, `_3`,
//! …, so that adding a table never changes what an existing
//! `schema::user_s::TABLE` means. A name that existed and was dropped keeps
//! its claim as long as a colliding name exists, so code naming the dropped
//! table stops compiling instead of naming the other one.
//!
//! Which appeared first is read from the schema after each migration (an
//! up-only replay through the real runner, see [`Ages`]), done only when the
//! final schema has such a collision; tables that appeared in the same
//! migration are taken in name order, columns in their table's order.
//!
//! The limit of that shortcut: when the final schema has no collision, no
//! history is read, so a table whose identifier was taken by an older,
//! since dropped table (`a-` was `schema::a_2` while `a` existed) gets the
//! plain identifier once the other is gone, and code that still names the
//! dropped table's module compiles against it.

use std::collections::{BTreeMap, BTreeSet};

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use migrate_runtime::schema::Table;

use crate::scan::Found;

/// Rust's keywords (all editions), which cannot name a module.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait",
    "true", "try", "type", "typeof", "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// The `Version` variant for each migration, by the rules in the module docs.
pub fn variant_names(migrations: &[Found]) -> Vec<String> {
    let bases: Vec<String> = migrations
        .iter()
        .map(|m| {
            let camel = m.name.to_upper_camel_case();
            if camel.is_empty() {
                format!("V{}", m.version)
            } else if camel.starts_with(|c: char| c.is_ascii_digit()) {
                format!("V{camel}")
            } else {
                camel
            }
        })
        .collect();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &bases {
        *count.entry(b.as_str()).or_default() += 1;
    }
    let mut taken: BTreeSet<String> = bases.iter().filter(|b| count[b.as_str()] == 1).cloned().collect();
    let mut out = Vec::with_capacity(bases.len());
    for (m, base) in migrations.iter().zip(&bases) {
        if count[base.as_str()] == 1 && base != "Self" {
            out.push(base.clone());
            continue;
        }
        let mut name = format!("{base}V{}", m.version);
        while taken.contains(&name) {
            name.push_str(&format!("V{}", m.version));
        }
        taken.insert(name.clone());
        out.push(name);
    }
    out
}

/// When each table and column name first appeared, in migration order: the
/// version of the first migration after which the schema had it, and its
/// place then (tables by name, columns in their table's order). Empty
/// (everything "always there") unless the final schema has a naming
/// collision, see the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ages {
    tables: BTreeMap<String, Age>,
    columns: BTreeMap<String, BTreeMap<String, Age>>,
}

impl Ages {
    /// Records the schema after migration `version`: names not seen before
    /// get this version.
    pub fn record(&mut self, version: u64, tables: &[Table]) {
        let mut tables: Vec<&Table> = tables.iter().collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        for (i, t) in tables.into_iter().enumerate() {
            self.tables.entry(t.name.clone()).or_insert((version, i));
            let columns = self.columns.entry(t.name.clone()).or_default();
            for (j, c) in t.columns.iter().enumerate() {
                columns.entry(c.name.clone()).or_insert((version, j));
            }
        }
    }
}

/// The version a name first appeared after, and its place then.
type Age = (u64, usize);

/// Makes `raw` into an ASCII identifier in the given case.
fn identifier(raw: &str, case: fn(&str) -> String) -> String {
    let ascii: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    case(&ascii)
}

fn module_base(table: &str) -> String {
    let mut name = identifier(table, |s| s.to_snake_case());
    if name.is_empty() {
        name = "table".to_owned();
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "t_");
    }
    if KEYWORDS.contains(&name.as_str()) {
        name.push('_');
    }
    name
}

fn column_base(column: &str) -> String {
    let mut name = identifier(column, |s| s.to_shouty_snake_case());
    if name.is_empty() {
        name = "COLUMN".to_owned();
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert_str(0, "C_");
    }
    if name == "TABLE" {
        name.push('_');
    }
    name
}

/// Whether two tables, or two columns of a table, would get the same
/// identifier: only then does naming depend on [`Ages`].
pub fn has_collision(tables: &[Table]) -> bool {
    let distinct = |names: Vec<String>| {
        let n = names.len();
        names.into_iter().collect::<BTreeSet<_>>().len() != n
    };
    distinct(tables.iter().map(|t| module_base(&t.name)).collect())
        || tables
            .iter()
            .any(|t| distinct(t.columns.iter().map(|c| column_base(&c.name)).collect()))
}

/// Unique identifiers for `current` names (in their order), with the names
/// in `ages` (which may include names that no longer exist) claiming theirs
/// in order of appearance. Without ages, `current`'s order decides.
fn assign(
    current: &[&str],
    ages: Option<&BTreeMap<String, Age>>,
    base: fn(&str) -> String,
    reserved: &[&str],
) -> Vec<String> {
    // (age, name, index in `current` if it is there)
    let claimants: Vec<(Age, &str, Option<usize>)> = match ages {
        None => current
            .iter()
            .enumerate()
            .map(|(i, name)| ((0, i), *name, Some(i)))
            .collect(),
        Some(ages) => {
            let mut all: Vec<_> = ages
                .iter()
                .map(|(name, &age)| (age, name.as_str(), current.iter().position(|c| c == name)))
                .collect();
            // A current name missing from the ages cannot happen (they are
            // recorded after the last migration); if it did, it comes last.
            all.extend(
                current
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !ages.contains_key(**c))
                    .map(|(i, name)| ((u64::MAX, i), *name, Some(i))),
            );
            all.sort();
            all
        }
    };
    let mut taken: BTreeSet<String> = reserved.iter().map(|&r| r.to_owned()).collect();
    let mut out = vec![String::new(); current.len()];
    for (_, name, index) in claimants {
        let id = unique(base(name), &mut taken);
        if let Some(i) = index {
            out[i] = id;
        }
    }
    out
}

/// The `schema` module name for each table, by the rules in the module docs.
pub fn module_names(tables: &[Table], ages: &Ages) -> Vec<String> {
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let ages = (!ages.tables.is_empty()).then_some(&ages.tables);
    assign(&names, ages, module_base, &[])
}

/// The constant name for each column, by the rules in the module docs.
pub fn column_names(table: &Table, ages: &Ages) -> Vec<String> {
    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    assign(&names, ages.columns.get(&table.name), column_base, &["TABLE"])
}

fn unique(name: String, taken: &mut BTreeSet<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{name}_{n}");
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use migrate_runtime::schema::{Column, Table};
    use proptest::prelude::*;

    use super::*;

    fn table(name: &str, columns: &[&str]) -> Table {
        Table::new(name, columns.iter().map(|c| Column::new(*c, "")).collect())
    }

    /// The schema after each migration (tables in name order, as the
    /// runtime reads them) → each migration's module names, with the ages
    /// of the migrations up to it.
    fn names_after_each(steps: &[Vec<Table>]) -> Vec<BTreeMap<String, String>> {
        let mut ages = Ages::default();
        steps
            .iter()
            .zip(1..)
            .map(|(tables, version)| {
                let mut tables = tables.clone();
                tables.sort_by(|a, b| a.name.cmp(&b.name));
                ages.record(version, &tables);
                module_names(&tables, &ages)
                    .into_iter()
                    .zip(tables.iter().map(|t| t.name.clone()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_later_table_does_not_take_an_existing_name() {
        // Issue 8, defect 7: `user-s` sorts before `user_s`.
        let before = vec![table("user_s", &[])];
        let after = vec![table("user_s", &[]), table("user-s", &[])];
        let names = names_after_each(&[before, after]);
        assert_eq!(names[0]["user_s"], "user_s");
        assert_eq!(names[1]["user_s"], "user_s");
        assert_eq!(names[1]["user_s_2"], "user-s");
        // Without the history, name order decides (the old behaviour).
        let mut sorted = vec![table("user-s", &[]), table("user_s", &[])];
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(module_names(&sorted, &Ages::default()), ["user_s", "user_s_2"]);
    }

    #[test]
    fn a_column_keeps_its_constant_through_a_rebuild() {
        let mut ages = Ages::default();
        ages.record(1, &[table("t", &["full_name"])]);
        ages.record(2, &[table("t", &["full_name", "full name"])]);
        // A rebuild puts the newer column first.
        let rebuilt = table("t", &["full name", "full_name"]);
        ages.record(3, std::slice::from_ref(&rebuilt));
        assert_eq!(column_names(&rebuilt, &ages), ["FULL_NAME_2", "FULL_NAME"]);
        assert_eq!(column_names(&rebuilt, &Ages::default()), ["FULL_NAME", "FULL_NAME_2"]);
    }

    #[test]
    fn collisions_are_found() {
        assert!(has_collision(&[table("user_s", &[]), table("user-s", &[])]));
        assert!(has_collision(&[table("t", &["a b", "a_b"])]));
        assert!(!has_collision(&[table("user_s", &["a", "b"]), table("users", &["a"])]));
    }

    const NAMES: &[&str] = &[
        "user_s", "user-s", "User S", "user s", "user_s_2", "user-s-2", "type", "Type",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Once an identifier names a table, it names no other table later,
        /// whatever tables are added or dropped.
        #[test]
        fn an_identifier_never_changes_meaning(steps in prop::collection::vec(prop::collection::btree_set(0..NAMES.len(), 0..5), 1..8)) {
            let steps: Vec<Vec<Table>> = steps
                .iter()
                .map(|set| set.iter().map(|&i| table(NAMES[i], &[])).collect())
                .collect();
            let mut meaning: BTreeMap<String, String> = BTreeMap::new();
            for names in names_after_each(&steps) {
                for (id, table) in names {
                    let first = meaning.entry(id.clone()).or_insert_with(|| table.clone());
                    prop_assert_eq!(&*first, &table, "`schema::{}` changed meaning", id);
                }
            }
        }
    }
}
