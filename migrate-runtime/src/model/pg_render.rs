//! A PostgreSQL model as SQL that recreates it (`cargo migrate schema`
//! and the snapshot, on PostgreSQL).

use std::fmt::Write as _;

use super::pg::quote;
use super::{Column, Generated, Index, Model, Object, Table};

impl Model {
    /// The schema read by [`read_postgres`](Self::read_postgres) as SQL
    /// that recreates it: types, sequences, functions, tables (columns,
    /// primary key, unique and CHECK constraints), foreign keys, indexes,
    /// views, triggers; each group sorted by name, each statement ending
    /// with `;` and a blank line between statements. Deterministic, so a
    /// committed snapshot changes exactly when the schema does.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use migrate_runtime::model::{Filter, Model};
    /// use migrate_runtime::postgres::{Client, NoTls};
    /// let mut client = Client::connect("postgres://app@localhost/app", NoTls)?;
    /// print!("{}", Model::read_postgres(&mut client, None, &Filter::new("_migrations"))?.postgres_sql());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn postgres_sql(&self) -> String {
        let mut statements: Vec<String> = Vec::new();
        for d in self
            .collations
            .values()
            .chain(self.types.values())
            .chain(self.sequences.values())
            .chain(self.functions.values())
        {
            statements.push(d.sql.trim_end().trim_end_matches(';').to_owned());
        }
        // The sequences of `serial` columns, which their column owns.
        let mut owned = Vec::new();
        for t in self.tables.values() {
            for c in &t.columns {
                if let Some(seq) = c.default.as_deref().and_then(serial_sequence) {
                    statements.push(format!("CREATE SEQUENCE {seq} AS {}", c.decl_type));
                    owned.push(format!(
                        "ALTER SEQUENCE {seq} OWNED BY {}.{}",
                        quote(&t.name),
                        quote(&c.name)
                    ));
                }
            }
        }
        // Partitions after the tables they are partitions of.
        let mut tables: Vec<&Table> = self.tables.values().collect();
        let mut made: Vec<String> = Vec::new();
        while !tables.is_empty() {
            let before = tables.len();
            tables.retain(|t| {
                let ready = self.partition_of(t).is_none_or(|(parent, _)| {
                    made.contains(&parent) || !self.tables.values().any(|p| quote(&p.name) == parent)
                });
                if ready {
                    statements.push(self.postgres_create_table(t));
                    made.push(quote(&t.name));
                }
                !ready
            });
            if tables.len() == before {
                // A cycle cannot be: make the rest as they are.
                statements.extend(tables.drain(..).map(|t| self.postgres_create_table(t)));
            }
        }
        statements.extend(owned);
        for t in self.tables.values() {
            for fk in &t.foreign_keys {
                statements.push(format!("ALTER TABLE {} ADD {}", quote(&t.name), foreign_key_sql(fk)));
            }
        }
        for t in self.tables.values() {
            for ix in t.indexes.values().filter(|ix| ix.origin == "c") {
                statements.push(index_sql(&t.name, ix));
            }
        }
        for v in self.views.values() {
            statements.push(v.sql.trim_end().trim_end_matches(';').to_owned());
        }
        for t in self.triggers.values() {
            statements.push(t.sql.trim_end().trim_end_matches(';').to_owned());
        }
        // Row-level security, policies, comments, partitions attached:
        // after what they are on.
        // (Partitions are made as such, with their tables.)
        for st in self.settings.values().filter(|s| s.object != Object::Partition) {
            statements.push(st.sql.clone());
        }
        let mut out = String::new();
        for s in statements {
            if !out.is_empty() {
                out.push('\n');
            }
            let _ = writeln!(out, "{s};");
        }
        out
    }
}

impl Model {
    /// `(parent, FOR VALUES …)` of table `t` when it is a partition, from
    /// its [`Setting`](super::Setting) (`ALTER TABLE parent ATTACH
    /// PARTITION t FOR VALUES …`); `parent` as SQL names it.
    fn partition_of(&self, t: &Table) -> Option<(String, String)> {
        let s = self
            .settings
            .values()
            .find(|s| s.object == Object::Partition && s.table.as_deref() == Some(t.name.as_str()))?;
        let (parent, bound) = s
            .sql
            .strip_prefix("ALTER TABLE ")?
            .split_once(&format!(" ATTACH PARTITION {} ", quote(&t.name)))?;
        Some((parent.to_owned(), bound.to_owned()))
    }

    /// `CREATE TABLE …` for table `t` of this model, as PostgreSQL takes
    /// it: columns, primary key, unique and CHECK constraints, `PARTITION
    /// BY`; a partition as `CREATE TABLE t PARTITION OF parent [(its own
    /// constraints)] FOR VALUES …` (its columns, and the constraints it
    /// inherits, come from the parent: `ATTACH PARTITION` would want
    /// those CHECK constraints made first).
    pub fn postgres_create_table(&self, t: &Table) -> String {
        let partition = self.partition_of(t);
        let mut items: Vec<String> = if partition.is_some() {
            Vec::new()
        } else {
            t.columns.iter().map(|c| format!("    {}", column_sql(c))).collect()
        };
        for ix in t.indexes.values().filter(|ix| ix.origin != "c") {
            let kind = if ix.origin == "pk" { "PRIMARY KEY" } else { "UNIQUE" };
            items.push(format!(
                "    CONSTRAINT {} {kind} ({}){}",
                quote(&ix.name),
                index_columns(ix),
                include(ix)
            ));
        }
        for check in &t.checks {
            items.push(format!("    {check}"));
        }
        let by = t
            .partition_by
            .as_deref()
            .map(|p| format!(" PARTITION BY {p}"))
            .unwrap_or_default();
        match partition {
            Some((parent, bound)) if items.is_empty() => {
                format!("CREATE TABLE {} PARTITION OF {parent} {bound}{by}", quote(&t.name))
            }
            Some((parent, bound)) => format!(
                "CREATE TABLE {} PARTITION OF {parent} (\n{}\n) {bound}{by}",
                quote(&t.name),
                items.join(",\n")
            ),
            None => format!("CREATE TABLE {} (\n{}\n){by}", quote(&t.name), items.join(",\n")),
        }
    }
}

impl Column {
    /// `email text DEFAULT '' NOT NULL`: the column's definition as
    /// PostgreSQL takes it in `CREATE TABLE` and `ALTER TABLE … ADD
    /// COLUMN`.
    pub fn postgres_definition(&self) -> String {
        column_sql(self)
    }
}

impl super::ForeignKey {
    /// `CONSTRAINT name FOREIGN KEY (a) REFERENCES t (id) ON DELETE
    /// CASCADE`: as PostgreSQL takes it in `ALTER TABLE … ADD`.
    pub fn postgres_definition(&self) -> String {
        foreign_key_sql(self)
    }
}

impl Index {
    /// `CREATE INDEX name ON table (columns) WHERE …`, for PostgreSQL.
    pub fn postgres_create(&self, table: &str) -> String {
        index_sql(table, self)
    }

    /// `a, (lower(b)) DESC`: the key columns as PostgreSQL takes them in
    /// `CREATE INDEX` and `PRIMARY KEY`/`UNIQUE` constraints.
    pub fn postgres_columns(&self) -> String {
        index_columns(self)
    }

    /// ` INCLUDE (c, d)`, what follows the key columns of an index or
    /// constraint with non-key columns; empty when it has none.
    pub fn postgres_include(&self) -> String {
        include(self)
    }
}

/// `name`, double-quoted when PostgreSQL would not read it back as written.
pub fn quote_postgres(name: &str) -> String {
    quote(name)
}

fn column_sql(c: &Column) -> String {
    let mut s = format!("{} {}", quote(&c.name), c.decl_type);
    if let Some(coll) = &c.collation {
        let _ = write!(s, " COLLATE {}", quote(coll));
    }
    match (&c.generated, &c.identity, &c.default) {
        (Some(Generated::Stored | Generated::Virtual), _, Some(expr)) => {
            let _ = write!(s, " GENERATED ALWAYS AS ({expr}) STORED");
        }
        (_, Some(identity), _) => {
            let _ = write!(s, " GENERATED {identity} AS IDENTITY");
        }
        (_, None, Some(d)) => {
            let _ = write!(s, " DEFAULT {d}");
        }
        _ => {}
    }
    if c.not_null {
        s.push_str(" NOT NULL");
    }
    s
}

/// `notes_id_seq` of a default `nextval('notes_id_seq'::regclass)`.
fn serial_sequence(default: &str) -> Option<&str> {
    default.strip_prefix("nextval('")?.strip_suffix("'::regclass)")
}

/// `FOREIGN KEY (a) REFERENCES t (id) ON DELETE CASCADE`.
fn foreign_key_sql(fk: &super::ForeignKey) -> String {
    let names = |cols: &[String]| cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let table = match fk.table.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote(schema), quote(table)),
        None => quote(&fk.table),
    };
    let mut s = match &fk.name {
        Some(name) => format!("CONSTRAINT {} ", quote(name)),
        None => String::new(),
    };
    let _ = write!(s, "FOREIGN KEY ({}) REFERENCES {table}", names(&fk.columns));
    if !fk.to.is_empty() {
        let _ = write!(s, " ({})", names(&fk.to));
    }
    if fk.on_delete != "NO ACTION" {
        let _ = write!(s, " ON DELETE {}", fk.on_delete);
    }
    if fk.on_update != "NO ACTION" {
        let _ = write!(s, " ON UPDATE {}", fk.on_update);
    }
    if fk.deferred {
        s.push_str(" DEFERRABLE INITIALLY DEFERRED");
    }
    s
}

fn index_columns(ix: &Index) -> String {
    ix.columns
        .iter()
        .map(|c| {
            let mut s = if c.expression {
                format!("({})", c.column)
            } else {
                c.column.clone()
            };
            if let Some(coll) = &c.collation {
                let _ = write!(s, " COLLATE {}", quote(coll));
            }
            if c.descending {
                s.push_str(" DESC");
            }
            s
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` INCLUDE (a, b)`, or nothing.
fn include(ix: &Index) -> String {
    if ix.include.is_empty() {
        return String::new();
    }
    // As the server prints them (`pg_get_indexdef`): quoted where needed.
    format!(" INCLUDE ({})", ix.include.join(", "))
}

/// `CREATE [UNIQUE] INDEX name ON table [USING method] (columns) [WHERE …]`.
fn index_sql(table: &str, ix: &Index) -> String {
    let mut s = format!(
        "CREATE {}INDEX {} ON {}",
        if ix.unique { "UNIQUE " } else { "" },
        quote(&ix.name),
        quote(table)
    );
    if let Some(method) = &ix.using {
        let _ = write!(s, " USING {method}");
    }
    let _ = write!(s, " ({}){}", index_columns(ix), include(ix));
    if let Some(w) = &ix.partial {
        let _ = write!(s, " WHERE {w}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::{Index, IndexColumn, Model, Object, Setting, Table};

    #[test]
    fn partitions_include_columns_collations_and_settings_are_rendered() {
        let mut model = Model::default();
        let ix = Index {
            name: "events_day".into(),
            unique: false,
            origin: "c".into(),
            columns: vec![IndexColumn {
                column: "day".into(),
                expression: false,
                descending: true,
                collation: Some("C".into()),
            }],
            partial: None,
            using: None,
            include: vec!["id".into(), "\"Note\"".into()],
        };
        model.tables.insert(
            "events".into(),
            Table {
                name: "events".into(),
                strict: false,
                without_rowid: false,
                virtual_sql: None,
                partition_by: Some("RANGE (day)".into()),
                columns: Vec::new(),
                indexes: [("events_day".to_owned(), ix)].into(),
                foreign_keys: Vec::new(),
                checks: Vec::new(),
            },
        );
        // A partition named before its parent is made after it, as one.
        let mut part = model.tables["events"].clone();
        part.name = "a_2024".into();
        part.partition_by = None;
        part.indexes.clear();
        part.checks
            .push("CONSTRAINT early CHECK (day < '2030-01-01'::date)".into());
        model.tables.insert("a_2024".into(), part);
        model.settings.insert(
            "partition of events on a_2024".into(),
            Setting {
                object: Object::Partition,
                table: Some("a_2024".into()),
                name: "of events".into(),
                sql: "ALTER TABLE events ATTACH PARTITION a_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')"
                    .into(),
                undo: "ALTER TABLE events DETACH PARTITION a_2024".into(),
            },
        );
        model.settings.insert(
            "comment on table events".into(),
            Setting {
                object: Object::Comment,
                table: Some("events".into()),
                name: "on table events".into(),
                sql: "COMMENT ON TABLE events IS 'what happened'".into(),
                undo: "COMMENT ON TABLE events IS NULL".into(),
            },
        );
        assert_eq!(
            model.postgres_sql(),
            "CREATE TABLE events (\n\n) PARTITION BY RANGE (day);\n\n\
             CREATE TABLE a_2024 PARTITION OF events (\n    CONSTRAINT early CHECK (day < '2030-01-01'::date)\n) \
             FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\n\n\
             CREATE INDEX events_day ON events (day COLLATE \"C\" DESC) INCLUDE (id, \"Note\");\n\n\
             COMMENT ON TABLE events IS 'what happened';\n"
        );
    }

    #[test]
    fn serial_sequences_are_named_by_their_default() {
        assert_eq!(
            super::serial_sequence("nextval('notes_id_seq'::regclass)"),
            Some("notes_id_seq")
        );
        assert_eq!(super::serial_sequence("0"), None);
    }
}
