//! The PostgreSQL rules, without a server: statement by statement, with
//! what the earlier migrations' statements say about the tables (their
//! columns and types, and the CHECK constraints that prove a column holds
//! no NULL). A table "exists" for a rule unless this migration created
//! it: it may hold rows on production, whatever the migrations before
//! did (a table made outside the migrations exists too).
//!
//! What PostgreSQL rewrites, scans or locks is from its manual: "ALTER
//! TABLE", section Notes (a volatile `DEFAULT` on `ADD COLUMN` and a
//! column type change rewrite the table, unless the old type is binary
//! coercible to the new one; `SET NOT NULL` skips its scan when a valid
//! `CHECK (col IS NOT NULL)` proves it, since PostgreSQL 12; `NOT VALID`
//! constraints skip the scan), "CREATE INDEX", section "Building Indexes
//! Concurrently", and "Explicit Locking" (section 13.3, the lock each
//! command takes).

use std::collections::{BTreeMap, BTreeSet};

use crate::pg_snapshot::{self, COLUMN_CONSTRAINTS, Tok};

use super::rules::{Finding, Removed};
use super::sql::{self, Kind, Statement};

/// One statement of a PostgreSQL migration: the shared form the phase
/// and contract checks read, and PostgreSQL's own tokens.
pub(crate) struct PgStatement {
    /// The statement as the SQLite rules see one.
    pub(crate) statement: Statement,
    /// Its PostgreSQL tokens (bare words in lower case).
    toks: Vec<Tok>,
}

/// The statements of a PostgreSQL script, split as the runtime splits
/// them (none when a string or comment is left open: the check reports
/// that).
pub(crate) fn statements(text: &str) -> Vec<PgStatement> {
    migrate_runtime::postgres_statements(text)
        .unwrap_or_default()
        .into_iter()
        .map(|(line, text)| {
            let mut toks = pg_snapshot::tokens(text);
            while toks.last().is_some_and(|t| t.is_punct(";")) {
                toks.pop();
            }
            let shared = toks
                .iter()
                .map(|t| match t {
                    Tok::Word(w) => sql::Tok::Word(w.clone()),
                    Tok::Name(n) => sql::Tok::Name(n.clone()),
                    Tok::Literal(_) => sql::Tok::Str,
                    Tok::Punct(p) => {
                        let mut chars = p.chars();
                        match (chars.next(), chars.next()) {
                            (Some(c), None) => sql::Tok::Punct(c),
                            // A number.
                            _ => sql::Tok::Word(p.clone()),
                        }
                    }
                })
                .collect();
            PgStatement {
                statement: Statement::of_tokens(line, shared),
                toks,
            }
        })
        .collect()
}

/// What the lint knows of a table from the statements before.
#[derive(Clone, Debug, Default)]
struct Table {
    /// Column → its type as written (lower case, `varchar(20)`).
    columns: BTreeMap<String, String>,
    /// CHECK constraints of the form `col IS NOT NULL`: name → (column,
    /// validated).
    not_null_checks: BTreeMap<String, (String, bool)>,
}

/// The tables the migrations so far made, as far as their statements say.
#[derive(Clone, Debug, Default)]
pub(crate) struct Schema {
    tables: BTreeMap<String, Table>,
}

/// One action of an `ALTER TABLE`.
#[derive(Debug)]
enum Action<'a> {
    AddColumn {
        column: String,
        decl_type: String,
        constraints: &'a [Tok],
    },
    AddConstraint {
        name: Option<String>,
        body: &'a [Tok],
    },
    Validate(String),
    DropConstraint(String),
    DropColumn(String),
    AlterType {
        column: String,
        decl_type: String,
        using: bool,
    },
    SetNotNull(String),
    RenameColumn(String, String),
    RenameTo(String),
    Other,
}

fn lower(name: &str) -> String {
    name.to_lowercase()
}

/// A possibly schema-qualified name at `at`: its last part, and the index after it.
fn qualified(toks: &[Tok], at: usize) -> Option<(String, usize)> {
    let mut name = toks.get(at)?.name()?.to_owned();
    let mut i = at + 1;
    while toks.get(i).is_some_and(|t| t.is_punct(".")) {
        name = toks.get(i + 1)?.name()?.to_owned();
        i += 2;
    }
    Some((lower(&name), i))
}

/// Whether the words `words` are at `at`.
fn at(toks: &[Tok], i: usize, words: &[&str]) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(k, w)| toks.get(i + k).is_some_and(|t| t.is(w)))
}

/// `ALTER TABLE [IF EXISTS] [ONLY] t [*] actions`: the table and its actions.
fn alter_table(toks: &[Tok]) -> Option<(String, Vec<Action<'_>>)> {
    if !at(toks, 0, &["alter", "table"]) {
        return None;
    }
    let mut i = 2;
    if at(toks, i, &["if", "exists"]) {
        i += 2;
    }
    if at(toks, i, &["only"]) {
        i += 1;
    }
    let (table, mut i) = qualified(toks, i)?;
    if toks.get(i).is_some_and(|t| t.is_punct("*")) {
        i += 1;
    }
    let actions = pg_snapshot::items(&toks[i..]).into_iter().map(action).collect();
    Some((table, actions))
}

fn name_at(toks: &[Tok], i: usize) -> Option<String> {
    toks.get(i).and_then(Tok::name).map(lower)
}

fn action(a: &[Tok]) -> Action<'_> {
    let starts_constraint = |t: &Tok| {
        ["constraint", "check", "unique", "primary", "foreign", "exclude"]
            .iter()
            .any(|w| t.is(w))
    };
    if at(a, 0, &["add"]) {
        let mut i = 1;
        let column_word = at(a, i, &["column"]);
        if column_word {
            i += 1;
        }
        if at(a, i, &["if", "not", "exists"]) {
            i += 3;
        }
        if !column_word && a.get(i).is_some_and(starts_constraint) {
            let (name, body) = if at(a, i, &["constraint"]) {
                (name_at(a, i + 1), a.get(i + 2..).unwrap_or_default())
            } else {
                (None, &a[i..])
            };
            return Action::AddConstraint { name, body };
        }
        let Some(column) = name_at(a, i) else {
            return Action::Other;
        };
        let rest = a.get(i + 1..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|t| COLUMN_CONSTRAINTS.iter().any(|w| t.is(w)))
            .unwrap_or(rest.len());
        return Action::AddColumn {
            column,
            decl_type: pg_snapshot::type_text(&rest[..end]),
            constraints: &rest[end..],
        };
    }
    if at(a, 0, &["validate", "constraint"]) {
        return name_at(a, 2).map_or(Action::Other, Action::Validate);
    }
    if at(a, 0, &["drop"]) {
        if at(a, 1, &["constraint"]) {
            let i = if at(a, 2, &["if", "exists"]) { 4 } else { 2 };
            return name_at(a, i).map_or(Action::Other, Action::DropConstraint);
        }
        if at(a, 1, &["column"]) || !a.get(1).is_some_and(|t| t.is("not") || t.is("default")) {
            let mut i = if at(a, 1, &["column"]) { 2 } else { 1 };
            if at(a, i, &["if", "exists"]) {
                i += 2;
            }
            return name_at(a, i).map_or(Action::Other, Action::DropColumn);
        }
        return Action::Other;
    }
    if at(a, 0, &["alter"]) {
        let i = if at(a, 1, &["column"]) { 2 } else { 1 };
        let Some(column) = name_at(a, i) else {
            return Action::Other;
        };
        let rest = a.get(i + 1..).unwrap_or_default();
        let type_at = if at(rest, 0, &["type"]) {
            Some(1)
        } else if at(rest, 0, &["set", "data", "type"]) {
            Some(3)
        } else {
            None
        };
        if let Some(from) = type_at {
            let rest = &rest[from..];
            let end = rest
                .iter()
                .position(|t| t.is("collate") || t.is("using"))
                .unwrap_or(rest.len());
            return Action::AlterType {
                column,
                decl_type: pg_snapshot::type_text(&rest[..end]),
                using: rest.iter().any(|t| t.is("using")),
            };
        }
        if at(rest, 0, &["set", "not", "null"]) {
            return Action::SetNotNull(column);
        }
        return Action::Other;
    }
    if at(a, 0, &["rename"]) {
        if at(a, 1, &["to"]) {
            return name_at(a, 2).map_or(Action::Other, Action::RenameTo);
        }
        if at(a, 1, &["constraint"]) {
            return Action::Other;
        }
        let i = if at(a, 1, &["column"]) { 2 } else { 1 };
        if let (Some(from), true, Some(to)) = (name_at(a, i), at(a, i + 1, &["to"]), name_at(a, i + 2)) {
            return Action::RenameColumn(from, to);
        }
    }
    Action::Other
}

/// The column a CHECK body (`CHECK (col IS NOT NULL)`) proves NOT NULL.
fn not_null_check(body: &[Tok]) -> Option<String> {
    if !at(body, 0, &["check"]) {
        return None;
    }
    // Drop the parentheses around the expression.
    let inner: Vec<&Tok> = body[1..]
        .iter()
        .filter(|t| !t.is_punct("(") && !t.is_punct(")"))
        .collect();
    match inner.as_slice() {
        [col, is, not, null, ..] if is.is("is") && not.is("not") && null.is("null") => col.name().map(lower),
        _ => None,
    }
}

/// `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] [name] ON [ONLY] t`:
/// (table, unique, concurrently).
fn create_index(toks: &[Tok]) -> Option<(String, bool, bool)> {
    if !at(toks, 0, &["create"]) {
        return None;
    }
    let unique = at(toks, 1, &["unique"]);
    let i = if unique { 2 } else { 1 };
    if !at(toks, i, &["index"]) {
        return None;
    }
    let concurrently = at(toks, i + 1, &["concurrently"]);
    let on = toks.iter().position(|t| t.is("on"))?;
    let mut j = on + 1;
    if at(toks, j, &["only"]) {
        j += 1;
    }
    let (table, _) = qualified(toks, j)?;
    Some((table, unique, concurrently))
}

/// The table a `CREATE [TEMP|UNLOGGED] TABLE [IF NOT EXISTS]` makes
/// (also `AS SELECT` and `PARTITION OF`).
fn created_table(toks: &[Tok]) -> Option<String> {
    if !at(toks, 0, &["create"]) {
        return None;
    }
    let mut i = 1;
    while ["global", "local", "temporary", "temp", "unlogged"]
        .iter()
        .any(|w| at(toks, i, &[w]))
    {
        i += 1;
    }
    if !at(toks, i, &["table"]) {
        return None;
    }
    i += 1;
    if at(toks, i, &["if", "not", "exists"]) {
        i += 3;
    }
    qualified(toks, i).map(|(t, _)| t)
}

/// `DROP TABLE [IF EXISTS] a, b`: the tables.
fn dropped_tables(toks: &[Tok]) -> Vec<String> {
    if !at(toks, 0, &["drop", "table"]) {
        return Vec::new();
    }
    let from = if at(toks, 2, &["if", "exists"]) { 4 } else { 2 };
    pg_snapshot::items(toks.get(from..).unwrap_or_default())
        .into_iter()
        .filter_map(|item| qualified(item, 0).map(|(t, _)| t))
        .collect()
}

/// Functions PostgreSQL marks VOLATILE (`provolatile = 'v'` in
/// `pg_proc`; the manual: "Current Date/Time" says `clock_timestamp()`
/// and `timeofday()` change during a statement, "UUID Functions" and
/// "Mathematical Functions" list `gen_random_uuid()` and `random()`,
/// "Sequence Manipulation Functions" `nextval()`).
const VOLATILE: &[&str] = &[
    "random",
    "random_normal",
    "clock_timestamp",
    "timeofday",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "nextval",
    "setseed",
];

/// Functions and function-like keywords known not to be VOLATILE (stable
/// or immutable): a `DEFAULT` calling only these is evaluated once, at
/// the `ALTER TABLE` (`now()` is stable: the transaction's start time).
const NOT_VOLATILE: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_setting",
    "cast",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "lower",
    "upper",
    "length",
    "concat",
    "concat_ws",
    "md5",
    "trim",
    "btrim",
    "replace",
    "substring",
    "format",
    "abs",
    "round",
    "date_trunc",
    "make_interval",
    "make_date",
    "to_char",
    "to_timestamp",
    "to_jsonb",
    "to_json",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "array",
    "row",
    "interval",
    "timestamp",
    "timestamptz",
    "numeric",
    "varchar",
];

/// Why adding a column with these constraints (and type) fills every
/// existing row, rewriting the table: a volatile default, a serial
/// type, an identity or a stored generated column.
fn rewrites_on_add(decl_type: &str, constraints: &[Tok]) -> Option<String> {
    if ["serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"].contains(&decl_type) {
        return Some(format!(
            "its type {decl_type} takes a default from a sequence (nextval(), volatile)"
        ));
    }
    if let Some(g) = constraints.iter().position(|t| t.is("generated")) {
        let rest = &constraints[g..];
        if rest.iter().any(|t| t.is("identity")) {
            return Some("an identity column takes each row's value from a sequence (nextval(), volatile)".to_owned());
        }
        if rest.iter().any(|t| t.is("stored")) {
            return Some("a stored generated column is computed for every row".to_owned());
        }
    }
    let d = constraints.iter().position(|t| t.is("default"))?;
    let mut depth = 0usize;
    let mut default = Vec::new();
    for t in &constraints[d + 1..] {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && COLUMN_CONSTRAINTS.iter().any(|w| t.is(w)) {
            break;
        }
        default.push(t);
    }
    default.windows(2).find_map(|w| {
        let (Tok::Word(f), true) = (w[0], w[1].is_punct("(")) else {
            return None;
        };
        if VOLATILE.contains(&f.as_str()) {
            Some(format!("its DEFAULT calls {f}(), which is volatile"))
        } else if NOT_VOLATILE.contains(&f.as_str()) {
            None
        } else {
            Some(format!(
                "its DEFAULT calls {f}(), which the lint does not know to be stable or immutable (a function is VOLATILE unless declared otherwise)"
            ))
        }
    })
}

/// A type as the rules compare it: `character varying` is `varchar`.
fn normal_type(t: &str) -> String {
    t.replace("character varying", "varchar").replace(' ', "")
}

/// `name(n)` or `name(p,s)`: the name and the numbers.
fn type_args(t: &str) -> (&str, Vec<u32>) {
    match t.split_once('(') {
        Some((name, args)) => (
            name,
            args.trim_end_matches(')')
                .split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect(),
        ),
        None => (t, Vec::new()),
    }
}

/// Whether changing a column from `old` to `new` keeps the table as it is:
/// the few binary-coercible changes the lint knows (the manual, "ALTER
/// TABLE" Notes, and the 9.2 release notes: a longer or no `varchar`
/// limit, `varchar` to `text` and back without a limit, a larger
/// `numeric` precision with the same scale, or no limit). Every other
/// change is taken to rewrite: conservative, a waiver says otherwise.
fn binary_coercible(old: &str, new: &str) -> bool {
    let (old, new) = (normal_type(old), normal_type(new));
    let ((o, oa), (n, na)) = (type_args(&old), type_args(&new));
    match (o, n) {
        ("varchar", "varchar") => na.is_empty() || (oa.len() == 1 && na.len() == 1 && na[0] >= oa[0]),
        ("varchar", "text") => true,
        ("text", "varchar") => na.is_empty(),
        ("numeric" | "decimal", "numeric" | "decimal") => {
            na.is_empty()
                || (oa.len() <= 2
                    && na.len() <= 2
                    && !oa.is_empty()
                    && na[0] >= oa[0]
                    && oa.get(1).unwrap_or(&0) == na.get(1).unwrap_or(&0))
        }
        _ => false,
    }
}

/// Every PostgreSQL finding on a migration's statements, given the tables
/// the migrations before made (`schema`, updated to after it).
/// `no_transaction`: the migration runs outside a transaction, where `SET
/// LOCAL` does nothing.
pub(crate) fn findings(schema: &mut Schema, statements: &[PgStatement], no_transaction: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut created: BTreeSet<String> = BTreeSet::new();
    let mut added: BTreeSet<(String, String)> = BTreeSet::new();
    let mut timeout = false;
    let mut locked_without_timeout = false;
    let mut ddl_line = None;
    let mut bulk = None;
    for s in statements {
        let (toks, line) = (&s.toks, s.statement.line);
        let mut found = |rule: &'static str, message: String, removes: Option<Removed>| {
            out.push(Finding {
                rule,
                line,
                message,
                removes,
            });
        };
        let exists = |t: &str, created: &BTreeSet<String>| !created.contains(t);
        if s.statement.is_ddl() && ddl_line.is_none() {
            ddl_line = Some(line);
        }
        // A strong lock on a table that exists, and the table.
        let mut lock: Option<(String, &str)> = None;
        if at(toks, 0, &["set"]) {
            let i = if at(toks, 1, &["local"]) || at(toks, 1, &["session"]) {
                2
            } else {
                1
            };
            // `= 0` (or `TO DEFAULT`, the server's 0 unless configured)
            // turns the timeout off.
            let off = toks
                .get(i + 2)
                .is_some_and(|v| v.is_punct("0") || v.text() == "'0'" || v.is("default"));
            if at(toks, i, &["lock_timeout"]) && !off && !(no_transaction && at(toks, 1, &["local"])) {
                timeout = true;
            }
        } else if toks
            .iter()
            .any(|t| matches!(t, Tok::Literal(l) if l == "'lock_timeout'"))
        {
            // set_config('lock_timeout', …)
            timeout = true;
        }
        if let Some(table) = created_table(toks) {
            created.insert(table.clone());
            let mut t = Table::default();
            if let Some(made) = pg_snapshot::create_table(toks) {
                t.columns = made
                    .columns
                    .iter()
                    .map(|c| (lower(&c.name), c.decl_type.clone()))
                    .collect();
            }
            schema.tables.insert(table, t);
        } else if let Some((table, unique, concurrently)) = create_index(toks) {
            if exists(&table, &created) {
                if unique {
                    found(
                        "MS004",
                        format!(
                            "adds a unique index on `{table}`, a table that may hold rows: passes on an empty database, may fail on production data (duplicates)"
                        ),
                        None,
                    );
                }
                if !concurrently {
                    found(
                        "MS014",
                        format!(
                            "creates an index on `{table}` without CONCURRENTLY: the table takes no writes until the index is built"
                        ),
                        None,
                    );
                    lock = Some((table, "CREATE INDEX"));
                }
            }
        } else if at(toks, 0, &["drop", "table"]) {
            for table in dropped_tables(toks) {
                if exists(&table, &created) {
                    found(
                        "MS001",
                        format!("drops table `{table}` and every row in it"),
                        Some(Removed::Table(table.clone())),
                    );
                    lock.get_or_insert((table.clone(), "DROP TABLE"));
                }
                schema.tables.remove(&table);
            }
        } else if at(toks, 0, &["truncate"]) {
            let from = if at(toks, 1, &["table"]) { 2 } else { 1 };
            if let Some((table, _)) = qualified(toks, from + usize::from(at(toks, from, &["only"])))
                && exists(&table, &created)
            {
                found(
                    "MS008",
                    format!("`TRUNCATE` of `{table}` deletes every row of the table"),
                    None,
                );
                lock = Some((table, "TRUNCATE"));
            }
        } else if at(toks, 0, &["lock"]) {
            let from = if at(toks, 1, &["table"]) { 2 } else { 1 };
            if let Some((table, _)) = qualified(toks, from)
                && exists(&table, &created)
            {
                lock = Some((table, "LOCK TABLE"));
            }
        } else if at(toks, 0, &["create"]) && toks.iter().take(4).any(|t| t.is("trigger")) {
            if let Some(on) = toks.iter().position(|t| t.is("on"))
                && let Some((table, _)) = qualified(toks, on + 1)
                && exists(&table, &created)
            {
                lock = Some((table, "CREATE TRIGGER"));
            }
        } else if let Some((table, actions)) = alter_table(toks) {
            let existing = exists(&table, &created);
            let only_validates = actions.iter().all(|a| matches!(a, Action::Validate(_)));
            if existing && !only_validates {
                lock = Some((table.clone(), "ALTER TABLE"));
            }
            let mut table = table;
            for a in actions {
                let entry = schema.tables.entry(table.clone()).or_default();
                match a {
                    Action::AddColumn {
                        column,
                        decl_type,
                        constraints,
                    } => {
                        if existing {
                            let pairs = || constraints.windows(2);
                            let not_null = pairs().any(|w| w[0].is("not") && w[1].is("null"))
                                || pairs().any(|w| w[0].is("primary") && w[1].is("key"));
                            let filled = constraints.iter().any(|t| t.is("default") || t.is("generated"))
                                || decl_type.contains("serial");
                            if not_null && !filled {
                                found(
                                    "MS005",
                                    format!(
                                        "adds column `{table}.{column}` NOT NULL without a DEFAULT: passes on an empty database, fails on a table holding rows"
                                    ),
                                    None,
                                );
                            }
                            if let Some(why) = rewrites_on_add(&decl_type, constraints) {
                                found(
                                    "MS016",
                                    format!(
                                        "adds column `{table}.{column}`, and {why}: PostgreSQL rewrites the whole table under an ACCESS EXCLUSIVE lock"
                                    ),
                                    None,
                                );
                            }
                            if constraints.iter().any(|t| t.is("unique")) {
                                found(
                                    "MS004",
                                    format!(
                                        "adds column `{table}.{column}` UNIQUE to a table that may hold rows: passes on an empty database, may fail on production data (duplicates)"
                                    ),
                                    None,
                                );
                            }
                        }
                        added.insert((table.clone(), column.clone()));
                        entry.columns.insert(column, decl_type);
                    }
                    Action::AddConstraint { name, body } => {
                        let not_valid = at(body, body.len().saturating_sub(2), &["not", "valid"]);
                        let kind = body.first().map(|t| t.text()).unwrap_or_default();
                        if let Some(column) = not_null_check(body) {
                            let name = name.clone().unwrap_or_else(|| format!("{table}_{column}_check"));
                            entry.not_null_checks.insert(name, (column, !not_valid));
                        }
                        if !existing || not_valid {
                            continue;
                        }
                        match kind.as_str() {
                            "check" => found(
                                "MS006",
                                format!(
                                    "adds a CHECK constraint to `{table}` without NOT VALID: passes on an empty database, may fail on production data (rows it rejects), and scans the table under an ACCESS EXCLUSIVE lock"
                                ),
                                None,
                            ),
                            "unique" | "primary" if !body.iter().any(|t| t.is("using")) => found(
                                "MS004",
                                format!(
                                    "adds a {} constraint to `{table}`, a table that may hold rows: passes on an empty database, may fail on production data (duplicates), and builds its index under an ACCESS EXCLUSIVE lock",
                                    if kind == "unique" { "UNIQUE" } else { "PRIMARY KEY" }
                                ),
                                None,
                            ),
                            "foreign" => found(
                                "MS018",
                                format!(
                                    "adds a foreign key to `{table}` without NOT VALID: it checks every row while both tables are locked against writes"
                                ),
                                None,
                            ),
                            _ => {}
                        }
                    }
                    Action::Validate(name) => {
                        if let Some(check) = entry.not_null_checks.get_mut(&name) {
                            check.1 = true;
                        }
                    }
                    Action::DropConstraint(name) => {
                        entry.not_null_checks.remove(&name);
                    }
                    Action::DropColumn(column) => {
                        if existing && !added.contains(&(table.clone(), column.clone())) {
                            found(
                                "MS002",
                                format!("drops column `{table}.{column}` and its data"),
                                Some(Removed::Column(table.clone(), column.clone())),
                            );
                        }
                        entry.columns.remove(&column);
                    }
                    Action::AlterType {
                        column,
                        decl_type,
                        using,
                    } => {
                        if existing && !added.contains(&(table.clone(), column.clone())) {
                            let old = entry.columns.get(&column).cloned();
                            let why = match &old {
                                None => Some("the lint does not know its type before".to_owned()),
                                Some(old) if normal_type(old) == normal_type(&decl_type) && !using => None,
                                Some(old) if !using && binary_coercible(old, &decl_type) => None,
                                Some(old) if using => Some(format!("from {old}, with USING")),
                                Some(old) => Some(format!("from {old}")),
                            };
                            if let Some(why) = why {
                                found(
                                    "MS017",
                                    format!(
                                        "changes the type of `{table}.{column}` to {decl_type} ({why}): PostgreSQL rewrites the whole table under an ACCESS EXCLUSIVE lock, and values that do not convert fail it"
                                    ),
                                    None,
                                );
                            }
                        }
                        entry.columns.insert(column, decl_type);
                    }
                    Action::SetNotNull(column) => {
                        let proven = entry.not_null_checks.values().any(|(c, valid)| *c == column && *valid);
                        if existing && !proven && !added.contains(&(table.clone(), column.clone())) {
                            found(
                                "MS015",
                                format!(
                                    "sets `{table}.{column}` NOT NULL without a validated CHECK ({column} IS NOT NULL): PostgreSQL scans the whole table under an ACCESS EXCLUSIVE lock, and a NULL on production fails it"
                                ),
                                None,
                            );
                        }
                    }
                    Action::RenameColumn(from, to) => {
                        if existing && !added.contains(&(table.clone(), from.clone())) {
                            found(
                                "MS003",
                                format!(
                                    "renames column `{table}.{from}` to `{to}`: code still running against the old name breaks"
                                ),
                                None,
                            );
                        }
                        if let Some(t) = entry.columns.remove(&from) {
                            entry.columns.insert(to, t);
                        }
                    }
                    Action::RenameTo(to) => {
                        if existing {
                            found(
                                "MS003",
                                format!(
                                    "renames table `{table}` to `{to}`: code still running against the old name breaks"
                                ),
                                None,
                            );
                        } else {
                            created.insert(to.clone());
                        }
                        if let Some(t) = schema.tables.remove(&table) {
                            schema.tables.insert(to.clone(), t);
                        }
                        table = to;
                    }
                    Action::Other => {}
                }
            }
        }
        if let Kind::Write { verb, table, filtered } = &s.statement.kind {
            let table = lower(table);
            if exists(&table, &created) {
                if !filtered {
                    out.push(Finding {
                        rule: "MS008",
                        line,
                        message: format!("`{verb}` of `{table}` has no WHERE: it changes every row of the table"),
                        removes: None,
                    });
                }
                bulk.get_or_insert((line, *verb, table));
            }
        }
        if let Some((table, what)) = lock
            && !timeout
            && !std::mem::replace(&mut locked_without_timeout, true)
        {
            out.push(Finding {
                rule: "MS019",
                line,
                message: format!("{what} locks `{table}` with no lock_timeout set: while it waits behind a long query, every other query on the table waits behind it"),
                removes: None,
            });
        }
    }
    if let (Some(ddl), Some((line, verb, table))) = (ddl_line, bulk) {
        out.push(Finding {
            rule: "MS009",
            line,
            message: format!("changes the schema (line {ddl}) and runs a bulk `{verb}` of `{table}` in one migration: the table stays locked while every row is rewritten"),
            removes: None,
        });
    }
    out.sort_by_key(|f| f.line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule ids and lines that fire on `up` after `before`.
    fn lint(before: &str, up: &str) -> Vec<(&'static str, usize)> {
        let mut schema = Schema::default();
        findings(&mut schema, &statements(before), false);
        findings(&mut schema, &statements(up), false)
            .into_iter()
            .map(|f| (f.rule, f.line))
            .collect()
    }

    const T: &str = "CREATE TABLE users (id bigint PRIMARY KEY, name varchar(20), email text, age int);";

    #[test]
    fn each_rule_fires_where_it_should() {
        let timeout = "SET lock_timeout = '2s';\n";
        let l = |up: &str| lint(T, &format!("{timeout}{up}"));
        assert_eq!(l("DROP TABLE users;"), [("MS001", 2)]);
        assert_eq!(l("ALTER TABLE users DROP COLUMN IF EXISTS age;"), [("MS002", 2)]);
        assert_eq!(l("ALTER TABLE users RENAME COLUMN name TO full_name;"), [("MS003", 2)]);
        assert_eq!(l("ALTER TABLE public.users RENAME TO people;"), [("MS003", 2)]);
        assert_eq!(
            l("CREATE UNIQUE INDEX CONCURRENTLY u ON users (email);"),
            [("MS004", 2)]
        );
        assert_eq!(l("ALTER TABLE users ADD COLUMN nick text NOT NULL;"), [("MS005", 2)]);
        assert_eq!(
            l("ALTER TABLE users ADD CONSTRAINT pos CHECK (age > 0);"),
            [("MS006", 2)]
        );
        assert_eq!(l("DELETE FROM users;"), [("MS008", 2)]);
        assert_eq!(l("TRUNCATE users;"), [("MS008", 2)]);
        assert_eq!(
            l("ALTER TABLE users ADD COLUMN nick text;\nUPDATE users SET nick = name WHERE nick IS NULL;"),
            [("MS009", 3)]
        );
        assert_eq!(l("CREATE INDEX i ON ONLY users (email);"), [("MS014", 2)]);
        assert_eq!(l("ALTER TABLE users ALTER COLUMN email SET NOT NULL;"), [("MS015", 2)]);
        assert_eq!(
            l("ALTER TABLE users ADD COLUMN t uuid DEFAULT gen_random_uuid();"),
            [("MS016", 2)]
        );
        assert_eq!(l("ALTER TABLE users ADD COLUMN n bigserial;"), [("MS016", 2)]);
        assert_eq!(l("ALTER TABLE users ALTER COLUMN age TYPE bigint;"), [("MS017", 2)]);
        assert_eq!(
            l("ALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (age) REFERENCES users (id);"),
            [("MS018", 2)]
        );
        assert_eq!(lint(T, "ALTER TABLE users ADD COLUMN c text;"), [("MS019", 1)]);
    }

    #[test]
    fn the_safe_ways_are_quiet() {
        let quiet = |up: &str| assert_eq!(lint(T, up), [], "{up}");
        quiet("SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN c timestamptz NOT NULL DEFAULT now();");
        quiet("SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN c text DEFAULT 'x';");
        quiet("SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN name TYPE varchar(40);");
        quiet("SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN name TYPE text;");
        quiet(
            "SET LOCAL lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT fk FOREIGN KEY (age) REFERENCES users (id) NOT VALID;",
        );
        quiet("ALTER TABLE users VALIDATE CONSTRAINT fk;");
        quiet("CREATE INDEX CONCURRENTLY i ON users (email);");
        quiet("UPDATE users SET email = lower(email) WHERE id < 1000;");
        // The NOT NULL procedure: a CHECK NOT VALID, validated, then SET NOT NULL.
        let mut schema = Schema::default();
        findings(&mut schema, &statements(T), false);
        let steps = [
            "SET lock_timeout = '2s';\nALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;",
            "ALTER TABLE users VALIDATE CONSTRAINT email_nn;",
            "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN email SET NOT NULL;",
        ];
        for step in steps {
            assert_eq!(findings(&mut schema, &statements(step), false), [], "{step}");
        }
        // A new table: nothing fires.
        quiet(
            "CREATE TABLE t (x int);\nCREATE INDEX ti ON t (x);\nALTER TABLE t ALTER COLUMN x SET NOT NULL;\nALTER TABLE t ADD COLUMN y uuid DEFAULT gen_random_uuid();\nDELETE FROM t;\nDROP TABLE t;",
        );
    }

    #[test]
    fn set_local_outside_a_transaction_does_not_count() {
        let mut schema = Schema::default();
        findings(&mut schema, &statements(T), false);
        let up = statements("SET LOCAL lock_timeout = '2s';\nALTER TABLE users ADD COLUMN c text;");
        let rules: Vec<_> = findings(&mut schema, &up, true).into_iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["MS019"]);
        let off = statements("SET lock_timeout = 0;\nALTER TABLE users ADD COLUMN d text;");
        let rules: Vec<_> = findings(&mut schema, &off, false).into_iter().map(|f| f.rule).collect();
        assert_eq!(rules, ["MS019"]);
    }

    #[test]
    fn type_changes() {
        assert!(binary_coercible("varchar(20)", "character varying(30)"));
        assert!(binary_coercible("character varying(20)", "varchar"));
        assert!(!binary_coercible("varchar(20)", "varchar(10)"));
        assert!(binary_coercible("numeric(10,2)", "numeric(12,2)"));
        assert!(!binary_coercible("numeric(10,2)", "numeric(12,3)"));
        assert!(!binary_coercible("int", "bigint"));
        assert!(!binary_coercible("text", "varchar(10)"));
    }
}
