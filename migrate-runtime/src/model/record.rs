//! A [`Model`] as text and back, for storing in a database: PostgreSQL's
//! start-up drift check keeps the schema its migrations made in the
//! tracking table, and compares the live schema with it.
//!
//! One line per object, fields separated by tabs; a tab, a line break and
//! a backslash in a field are written `\t`, `\n` and `\\`, a missing value
//! `\N`, a list's items are separated by `\x1f`. The first line names the
//! format, so a later version can read an older record or refuse it.

use std::collections::BTreeMap;

use super::{
    Column, Definition, ForeignKey, Generated, Index, IndexColumn, Model, Object, Setting, Table, Trigger, View,
};

/// Version 2 added index `INCLUDE` columns, partition keys, collations and
/// [`Setting`]s (comments, row-level security, policies, partition bounds): a version 1 record, which lacks them, is
/// not read (the start-up check then waits for the next migration's record
/// rather than report them as drift).
const HEADER: &str = "migrate-model 2";

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn unesc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn opt(s: Option<&str>) -> String {
    s.map_or_else(|| "\\N".to_owned(), esc)
}

fn unopt(s: &str) -> Option<String> {
    (s != "\\N").then(|| unesc(s))
}

fn list(items: &[String]) -> String {
    esc(&items.join("\u{1f}"))
}

fn unlist(s: &str) -> Vec<String> {
    let s = unesc(s);
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('\u{1f}').map(str::to_owned).collect()
    }
}

fn flag(b: bool) -> &'static str {
    if b { "1" } else { "0" }
}

impl Model {
    /// The model as text that [`from_record`](Self::from_record) reads
    /// back into an equal model.
    pub fn to_record(&self) -> String {
        let mut lines = vec![HEADER.to_owned()];
        let mut line = |fields: Vec<String>| lines.push(fields.join("\t"));
        for (key, t) in &self.tables {
            line(vec![
                "T".into(),
                esc(key),
                esc(&t.name),
                flag(t.strict).into(),
                flag(t.without_rowid).into(),
                opt(t.virtual_sql.as_deref()),
                list(&t.checks),
                opt(t.partition_by.as_deref()),
            ]);
            for c in &t.columns {
                line(vec![
                    "C".into(),
                    esc(key),
                    esc(&c.name),
                    esc(&c.decl_type),
                    flag(c.not_null).into(),
                    opt(c.default.as_deref()),
                    c.primary_key.to_string(),
                    opt(c.collation.as_deref()),
                    match c.generated {
                        Some(Generated::Virtual) => "v",
                        Some(Generated::Stored) => "s",
                        None => "-",
                    }
                    .into(),
                    flag(c.hidden).into(),
                    opt(c.identity.as_deref()),
                ]);
            }
            for (ikey, ix) in &t.indexes {
                line(vec![
                    "I".into(),
                    esc(key),
                    esc(ikey),
                    esc(&ix.name),
                    flag(ix.unique).into(),
                    esc(&ix.origin),
                    opt(ix.partial.as_deref()),
                    opt(ix.using.as_deref()),
                    list(&ix.include),
                ]);
                for c in &ix.columns {
                    line(vec![
                        "X".into(),
                        esc(key),
                        esc(ikey),
                        esc(&c.column),
                        flag(c.expression).into(),
                        flag(c.descending).into(),
                        opt(c.collation.as_deref()),
                    ]);
                }
            }
            for fk in &t.foreign_keys {
                line(vec![
                    "F".into(),
                    esc(key),
                    list(&fk.columns),
                    esc(&fk.table),
                    list(&fk.to),
                    esc(&fk.on_delete),
                    esc(&fk.on_update),
                    flag(fk.deferred).into(),
                    opt(fk.name.as_deref()),
                ]);
            }
        }
        for (key, v) in &self.views {
            line(vec!["V".into(), esc(key), esc(&v.name), esc(&v.sql)]);
        }
        for (key, t) in &self.triggers {
            line(vec!["G".into(), esc(key), esc(&t.name), esc(&t.table), esc(&t.sql)]);
        }
        for (kind, map) in [
            ("P", &self.functions),
            ("Y", &self.types),
            ("S", &self.sequences),
            ("L", &self.collations),
        ] {
            for (key, d) in map {
                line(vec![kind.into(), esc(key), esc(&d.name), esc(&d.sql)]);
            }
        }
        for (key, st) in &self.settings {
            line(vec![
                "A".into(),
                esc(key),
                st.object.as_str().into(),
                opt(st.table.as_deref()),
                esc(&st.name),
                esc(&st.sql),
                esc(&st.undo),
            ]);
        }
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    /// Reads a model written by [`to_record`](Self::to_record); `None`
    /// when `text` is not one (another format, or damaged).
    pub fn from_record(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut model = Self::default();
        for line in lines {
            let f: Vec<&str> = line.split('\t').collect();
            let field = |i: usize| f.get(i).copied();
            let s = |i: usize| field(i).map(unesc);
            let b = |i: usize| field(i).map(|v| v == "1");
            let o = |i: usize| field(i).map(unopt);
            let owner = unesc(f.get(1).copied().unwrap_or_default());
            match *f.first()? {
                "T" => {
                    model.tables.insert(
                        s(1)?,
                        Table {
                            name: s(2)?,
                            strict: b(3)?,
                            without_rowid: b(4)?,
                            virtual_sql: o(5)?,
                            columns: Vec::new(),
                            indexes: BTreeMap::new(),
                            foreign_keys: Vec::new(),
                            checks: unlist(field(6)?),
                            partition_by: o(7)?,
                        },
                    );
                }
                "C" => {
                    let c = Column {
                        name: s(2)?,
                        decl_type: s(3)?,
                        not_null: b(4)?,
                        default: o(5)?,
                        primary_key: field(6)?.parse().ok()?,
                        collation: o(7)?,
                        generated: match field(8)? {
                            "v" => Some(Generated::Virtual),
                            "s" => Some(Generated::Stored),
                            _ => None,
                        },
                        hidden: b(9)?,
                        identity: o(10)?,
                    };
                    model.tables.get_mut(&owner)?.columns.push(c);
                }
                "I" => {
                    let ix = Index {
                        name: s(3)?,
                        unique: b(4)?,
                        origin: s(5)?,
                        columns: Vec::new(),
                        partial: o(6)?,
                        using: o(7)?,
                        include: unlist(field(8)?),
                    };
                    model.tables.get_mut(&owner)?.indexes.insert(s(2)?, ix);
                }
                "X" => {
                    let c = IndexColumn {
                        column: s(3)?,
                        expression: b(4)?,
                        descending: b(5)?,
                        collation: o(6)?,
                    };
                    let key = s(2)?;
                    model.tables.get_mut(&owner)?.indexes.get_mut(&key)?.columns.push(c);
                }
                "F" => {
                    let fk = ForeignKey {
                        columns: unlist(field(2)?),
                        table: s(3)?,
                        to: unlist(field(4)?),
                        on_delete: s(5)?,
                        on_update: s(6)?,
                        deferred: b(7)?,
                        name: o(8)?,
                    };
                    model.tables.get_mut(&owner)?.foreign_keys.push(fk);
                }
                "V" => {
                    model.views.insert(
                        s(1)?,
                        View {
                            name: s(2)?,
                            sql: s(3)?,
                        },
                    );
                }
                "G" => {
                    model.triggers.insert(
                        s(1)?,
                        Trigger {
                            name: s(2)?,
                            table: s(3)?,
                            sql: s(4)?,
                        },
                    );
                }
                kind @ ("P" | "Y" | "S" | "L") => {
                    let map = match kind {
                        "P" => &mut model.functions,
                        "Y" => &mut model.types,
                        "L" => &mut model.collations,
                        _ => &mut model.sequences,
                    };
                    map.insert(
                        s(1)?,
                        Definition {
                            name: s(2)?,
                            sql: s(3)?,
                        },
                    );
                }
                "A" => {
                    let object = [Object::Comment, Object::Policy, Object::RowSecurity, Object::Partition]
                        .into_iter()
                        .find(|o| Some(o.as_str()) == field(2))?;
                    model.settings.insert(
                        s(1)?,
                        Setting {
                            object,
                            table: o(3)?,
                            name: s(4)?,
                            sql: s(5)?,
                            undo: s(6)?,
                        },
                    );
                }
                _ => return None,
            }
        }
        Some(model)
    }
}

#[cfg(all(test, feature = "rusqlite"))]
mod tests {
    use super::*;
    use crate::model::Filter;

    #[test]
    fn a_record_reads_back_into_the_same_model() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE a (id INTEGER PRIMARY KEY, \"we\tird\" TEXT NOT NULL DEFAULT 'x\\y' COLLATE NOCASE, \
               g INT GENERATED ALWAYS AS (id * 2) STORED, CHECK (id > 0), UNIQUE (\"we\tird\"));\n\
             CREATE TABLE b (a_id INTEGER REFERENCES a (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED, x);\n\
             CREATE INDEX b_x ON b (lower(x) DESC) WHERE x IS NOT NULL;\n\
             CREATE VIEW v AS SELECT 'line\nbreak' AS t;\n\
             CREATE TRIGGER tr AFTER INSERT ON b BEGIN SELECT 1; END;\n\
             CREATE TABLE empty (x);",
        )
        .unwrap();
        let mut model = Model::read(&conn, &Filter::new("_migrations")).unwrap();
        model.functions.insert(
            "f()".into(),
            Definition {
                name: "f()".into(),
                sql: "CREATE FUNCTION f()\n\tRETURNS int".into(),
            },
        );
        model.tables.get_mut("a").unwrap().columns[0].identity = Some("BY DEFAULT".into());
        let ix = model.tables.get_mut("b").unwrap().indexes.values_mut().next().unwrap();
        ix.include = vec!["a_id".into(), "x\ty".into()];
        model.tables.get_mut("a").unwrap().partition_by = Some("RANGE (id)".into());
        model.settings.insert(
            "comment on table a".into(),
            Setting {
                object: Object::Comment,
                table: Some("a".into()),
                name: "on table a".into(),
                sql: "COMMENT ON TABLE a IS 'it''s\n'".into(),
                undo: "COMMENT ON TABLE a IS NULL".into(),
            },
        );
        let text = model.to_record();
        assert_eq!(Model::from_record(&text), Some(model));
        assert_eq!(Model::from_record("something else"), None);
        assert_eq!(Model::from_record(&format!("{HEADER}\nC\tnope\tx")), None);
    }
}
