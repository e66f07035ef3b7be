//! The `ALTER` statements that turn one enum type, domain or sequence into
//! another, from the `CREATE` statements the PostgreSQL model holds
//! (`migrate_runtime::model`'s reader writes them in one fixed shape).
//!
//! PostgreSQL's manual, "ALTER TYPE": `ADD VALUE [BEFORE|AFTER]` and
//! `RENAME VALUE`; no way to remove a value or reorder them, so that is a
//! rebuild of the type (a new type, every column moved to it with
//! `USING col::text::type`, the old type dropped), which fails, changing
//! nothing, while a row holds a removed value. `ADD VALUE` may run in a
//! transaction block from PostgreSQL 12 on, but the new value cannot be
//! used before that transaction commits (before 12 it cannot run in a
//! transaction block at all). "ALTER DOMAIN": `SET`/`DROP DEFAULT`,
//! `SET`/`DROP NOT NULL`, `ADD`/`DROP CONSTRAINT`; its base type cannot
//! change. "ALTER SEQUENCE": `AS`, `INCREMENT BY`, `MINVALUE`, `MAXVALUE`,
//! `START WITH`, `CACHE`, `[NO] CYCLE` in one statement.

use migrate_runtime::model::{Model, quote_postgres as quote};

/// What changing one type or sequence takes.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Alter {
    /// Statements that change it in place, with a note to put above them.
    Live { note: Option<String>, sql: Vec<String> },
    /// A rebuild that fails while a row holds what it removes: written
    /// only with `--allow-drop`.
    Rebuild { why: String, sql: Vec<String> },
    /// Nothing PostgreSQL can say: why.
    Cannot(String),
}

/// `'it''s'` → `it's`; the labels of `CREATE TYPE x AS ENUM ('a', 'b')`.
fn enum_labels(sql: &str) -> Option<Vec<String>> {
    let body = sql.split_once(" AS ENUM (")?.1.strip_suffix(')')?;
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == ',') {
            chars.next();
        }
        let Some(first) = chars.next() else {
            break;
        };
        // quote_literal writes E'…' when the label has a backslash.
        let escaped = first == 'E';
        if escaped && chars.next() != Some('\'') || !escaped && first != '\'' {
            return None;
        }
        let mut label = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' if escaped => label.push(chars.next()?),
                c => label.push(c),
            }
        }
        labels.push(label);
    }
    Some(labels)
}

/// An SQL string literal of `s`.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// How enum type `name` (its labels `from`) becomes one with labels `to`;
/// `model` has the columns of that type (the schema the statements run
/// on).
fn alter_enum(name: &str, from: &[String], to: &[String], model: &Model) -> Alter {
    let ty = quote(name);
    let removed: Vec<&String> = from.iter().filter(|l| !to.contains(l)).collect();
    let added: Vec<&String> = to.iter().filter(|l| !from.contains(l)).collect();
    // Renamed in place: the same list with some labels replaced.
    if !removed.is_empty() && removed.len() == added.len() && from.len() == to.len() {
        let pairs: Vec<(&String, &String)> = from.iter().zip(to).filter(|(a, b)| a != b).collect();
        if pairs.iter().all(|(a, b)| removed.contains(a) && added.contains(b)) {
            return Alter::Live {
                note: None,
                sql: pairs
                    .iter()
                    .map(|(a, b)| format!("ALTER TYPE {ty} RENAME VALUE {} TO {}", literal(a), literal(b)))
                    .collect(),
            };
        }
    }
    let kept: Vec<&String> = to.iter().filter(|l| from.contains(l)).collect();
    if removed.is_empty() && kept.iter().copied().eq(from.iter()) {
        // Added only: each after the label before it, or (before the first
        // old label) before the label after it, added in reverse order.
        let first_old = to.iter().position(|l| from.contains(l)).unwrap_or(to.len());
        let mut sql = Vec::new();
        for i in (0..first_old).rev() {
            let place = to
                .get(i + 1)
                .map(|next| format!(" BEFORE {}", literal(next)))
                .unwrap_or_default();
            sql.push(format!("ALTER TYPE {ty} ADD VALUE {}{place}", literal(&to[i])));
        }
        for i in first_old + 1..to.len() {
            if !from.contains(&to[i]) {
                sql.push(format!(
                    "ALTER TYPE {ty} ADD VALUE {} AFTER {}",
                    literal(&to[i]),
                    literal(&to[i - 1])
                ));
            }
        }
        return Alter::Live {
            note: Some(format!(
                "ALTER TYPE … ADD VALUE runs in this migration's transaction on PostgreSQL 12 and later, where the new value of {name} cannot be used before it commits; on PostgreSQL 11 and older it cannot run in a transaction: move it to a migration of its own whose first line is `-- migrate:no-transaction`"
            )),
            sql,
        };
    }
    // Removed or reordered: rebuild the type.
    let old = quote(&format!("{name}__old"));
    let mut sql = vec![
        format!("ALTER TYPE {ty} RENAME TO {old}"),
        format!(
            "CREATE TYPE {ty} AS ENUM ({})",
            to.iter().map(|l| literal(l)).collect::<Vec<_>>().join(", ")
        ),
    ];
    for t in model.tables.values() {
        for c in &t.columns {
            let array = c.decl_type == format!("{name}[]");
            if c.decl_type != name && !array {
                continue;
            }
            let (table, col) = (quote(&t.name), quote(&c.name));
            let target = if array { format!("{ty}[]") } else { ty.clone() };
            if c.default.is_some() {
                sql.push(format!("ALTER TABLE {table} ALTER COLUMN {col} DROP DEFAULT"));
            }
            sql.push(format!(
                "ALTER TABLE {table} ALTER COLUMN {col} TYPE {target} USING {col}::text::{target}"
            ));
            if let Some(d) = &c.default {
                sql.push(format!("ALTER TABLE {table} ALTER COLUMN {col} SET DEFAULT {d}"));
            }
        }
    }
    sql.push(format!("DROP TYPE {old}"));
    let why = if removed.is_empty() {
        format!(
            "reorders the values of enum {name}: PostgreSQL cannot reorder them in place, so this rebuilds the type and moves every column of it to the new one"
        )
    } else {
        format!(
            "removes value {} of enum {name}: PostgreSQL has no ALTER TYPE … DROP VALUE, so this rebuilds the type and moves every column of it to the new one, which fails (changing nothing) while a row holds a removed value",
            removed.iter().map(|l| literal(l)).collect::<Vec<_>>().join(", ")
        )
    };
    Alter::Rebuild { why, sql }
}

/// The parts of `CREATE DOMAIN name AS base [DEFAULT d] [NOT NULL]
/// [CONSTRAINT c …]…`.
#[derive(Debug, PartialEq, Eq)]
struct Domain {
    base: String,
    default: Option<String>,
    not_null: bool,
    /// `(name, CONSTRAINT name CHECK (…))`.
    constraints: Vec<(String, String)>,
}

fn domain(sql: &str, name: &str) -> Option<Domain> {
    let rest = sql.strip_prefix(&format!("CREATE DOMAIN {} AS ", quote(name)))?;
    let mut parts = rest.split(" CONSTRAINT ");
    let head = parts.next()?;
    let constraints = parts
        .map(|c| {
            let name = if let Some(q) = c.strip_prefix('"') {
                format!("\"{}\"", q.split_once("\" ")?.0)
            } else {
                c.split_once(' ')?.0.to_owned()
            };
            Some((name, format!("CONSTRAINT {c}")))
        })
        .collect::<Option<Vec<_>>>()?;
    let (head, not_null) = match head.strip_suffix(" NOT NULL") {
        Some(h) => (h, true),
        None => (head, false),
    };
    let (base, default) = match head.split_once(" DEFAULT ") {
        Some((b, d)) => (b, Some(d.to_owned())),
        None => (head, None),
    };
    Some(Domain {
        base: base.to_owned(),
        default,
        not_null,
        constraints,
    })
}

fn alter_domain(name: &str, from: &Domain, to: &Domain) -> Alter {
    if from.base != to.base {
        return Alter::Cannot(format!(
            "the base type of domain {name} changed ({} → {}), which ALTER DOMAIN cannot change: create a new domain, move the columns to it, drop the old one",
            from.base, to.base
        ));
    }
    let d = quote(name);
    let mut sql = Vec::new();
    for (c, _) in from.constraints.iter().filter(|c| !to.constraints.contains(c)) {
        sql.push(format!("ALTER DOMAIN {d} DROP CONSTRAINT {c}"));
    }
    if from.default != to.default {
        sql.push(match &to.default {
            Some(v) => format!("ALTER DOMAIN {d} SET DEFAULT {v}"),
            None => format!("ALTER DOMAIN {d} DROP DEFAULT"),
        });
    }
    if from.not_null != to.not_null {
        let what = if to.not_null { "SET" } else { "DROP" };
        sql.push(format!("ALTER DOMAIN {d} {what} NOT NULL"));
    }
    for (_, c) in to.constraints.iter().filter(|c| !from.constraints.contains(c)) {
        sql.push(format!("ALTER DOMAIN {d} ADD {c}"));
    }
    Alter::Live { note: None, sql }
}

/// `ALTER SEQUENCE name AS … CYCLE|NO CYCLE` from `CREATE SEQUENCE name AS
/// …`: every option at once, so `to`'s are the sequence's after it.
fn alter_sequence(name: &str, to: &str) -> Option<Alter> {
    let q = quote(name);
    let options = to.strip_prefix(&format!("CREATE SEQUENCE {q} "))?;
    let options = if options.ends_with(" CYCLE") {
        options.to_owned()
    } else {
        format!("{options} NO CYCLE")
    };
    Some(Alter::Live {
        note: None,
        sql: vec![format!("ALTER SEQUENCE {q} {options}")],
    })
}

/// How type or sequence `name` becomes `to` from `from` (their `CREATE`
/// statements as the model holds them); `model` is the schema the
/// statements run on.
pub(super) fn alter(name: &str, from: &str, to: &str, model: &Model) -> Alter {
    let cannot = || {
        Alter::Cannot(format!(
            "{name} changed in a way this cannot write for you (write the ALTER yourself):\nwas: {from}\nis:  {to}"
        ))
    };
    if from.starts_with("CREATE COLLATION ") {
        return Alter::Cannot(format!(
            "collation {name} changed, which ALTER COLLATION cannot do (it only renames and refreshes the version): create a collation under a new name, move the columns and indexes to it, drop the old one:\nwas: {from}\nis:  {to}"
        ));
    }
    if from.starts_with("CREATE SEQUENCE ") {
        return alter_sequence(name, to).unwrap_or_else(cannot);
    }
    if let (Some(a), Some(b)) = (enum_labels(from), enum_labels(to)) {
        return alter_enum(name, &a, &b, model);
    }
    match (domain(from, name), domain(to, name)) {
        (Some(a), Some(b)) => alter_domain(name, &a, &b),
        _ => cannot(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(a: Alter) -> Vec<String> {
        match a {
            Alter::Live { sql, .. } => sql,
            other => panic!("{other:?}"),
        }
    }

    fn labels(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn enum_labels_are_read_back_from_quote_literal() {
        assert_eq!(
            enum_labels("CREATE TYPE mood AS ENUM ('good', 'it''s', E'a\\\\b')"),
            Some(labels(&["good", "it's", "a\\b"]))
        );
        assert_eq!(enum_labels("CREATE TYPE e AS ENUM ()"), Some(Vec::new()));
        assert_eq!(enum_labels("CREATE DOMAIN d AS integer"), None);
    }

    #[test]
    fn added_enum_values_go_where_they_are() {
        let m = Model::default();
        let sql = live(alter_enum(
            "mood",
            &labels(&["good", "bad"]),
            &labels(&["awful", "worse", "good", "meh", "bad", "it's"]),
            &m,
        ));
        assert_eq!(
            sql,
            [
                "ALTER TYPE mood ADD VALUE 'worse' BEFORE 'good'",
                "ALTER TYPE mood ADD VALUE 'awful' BEFORE 'worse'",
                "ALTER TYPE mood ADD VALUE 'meh' AFTER 'good'",
                "ALTER TYPE mood ADD VALUE 'it''s' AFTER 'bad'",
            ]
        );
        let sql = live(alter_enum(
            "Mood",
            &labels(&["good", "bad"]),
            &labels(&["fine", "bad"]),
            &m,
        ));
        assert_eq!(sql, ["ALTER TYPE \"Mood\" RENAME VALUE 'good' TO 'fine'"]);
    }

    #[test]
    fn a_removed_enum_value_is_a_rebuild_that_moves_the_columns() {
        let m = Model::default();
        let Alter::Rebuild { why, sql } = alter_enum("mood", &labels(&["good", "bad"]), &labels(&["good"]), &m) else {
            panic!()
        };
        assert!(why.starts_with("removes value 'bad' of enum mood"), "{why}");
        assert_eq!(
            sql,
            [
                "ALTER TYPE mood RENAME TO mood__old",
                "CREATE TYPE mood AS ENUM ('good')",
                "DROP TYPE mood__old"
            ]
        );
        assert!(matches!(
            alter_enum("mood", &labels(&["good", "bad"]), &labels(&["bad", "good"]), &m),
            Alter::Rebuild { .. }
        ));
    }

    #[test]
    fn domains_change_part_by_part() {
        let m = Model::default();
        let from = "CREATE DOMAIN score AS integer DEFAULT 0 NOT NULL CONSTRAINT score_check CHECK (VALUE >= 0)";
        let to = "CREATE DOMAIN score AS integer DEFAULT 1 CONSTRAINT small CHECK (VALUE < 100)";
        assert_eq!(
            live(alter("score", from, to, &m)),
            [
                "ALTER DOMAIN score DROP CONSTRAINT score_check",
                "ALTER DOMAIN score SET DEFAULT 1",
                "ALTER DOMAIN score DROP NOT NULL",
                "ALTER DOMAIN score ADD CONSTRAINT small CHECK (VALUE < 100)",
            ]
        );
        assert!(matches!(
            alter("score", from, "CREATE DOMAIN score AS bigint", &m),
            Alter::Cannot(why) if why.contains("base type of domain score changed (integer → bigint)")
        ));
    }

    #[test]
    fn sequences_take_every_option_at_once() {
        let m = Model::default();
        let from = "CREATE SEQUENCE tickets AS bigint INCREMENT BY 1 MINVALUE 1 MAXVALUE 9 START WITH 1 CACHE 1 CYCLE";
        let to = "CREATE SEQUENCE tickets AS bigint INCREMENT BY 5 MINVALUE 1 MAXVALUE 9 START WITH 1 CACHE 1";
        assert_eq!(
            live(alter("tickets", from, to, &m)),
            ["ALTER SEQUENCE tickets AS bigint INCREMENT BY 5 MINVALUE 1 MAXVALUE 9 START WITH 1 CACHE 1 NO CYCLE"]
        );
        assert_eq!(
            live(alter("tickets", to, from, &m)),
            ["ALTER SEQUENCE tickets AS bigint INCREMENT BY 1 MINVALUE 1 MAXVALUE 9 START WITH 1 CACHE 1 CYCLE"]
        );
    }
}
