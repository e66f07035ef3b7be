//! The lint: rules with stable ids (`MS001`…) that flag migrations which
//! replay fine on an empty database but lose data, break running code, or
//! may fail (or lock the app out) on production data.
//!
//! On SQLite each rule is a pure function over a migration's up
//! statements and the [schema model](migrate_runtime::model::Model)
//! before and after it (see the `rules` module); the build reads those
//! models in an up-only replay of its own, so the replay cache never
//! hides a finding. On PostgreSQL the `pg` module's rules read the
//! statements, knowing what the earlier migrations' statements made: no
//! server is needed. The lint runs on migrations from version `lint_from`
//! in `[package.metadata.migrate]` on (not at all without it, so
//! upgrading does not re-judge history); `-- migrate:allow MS00N reason`
//! at the top of an up script waives a rule for that migration.

use migrate_runtime::Migrator;
use migrate_runtime::model::{Filter, Model};

use crate::problem::{Problem, Severity};
use crate::scan::Found;

mod pg;
mod rules;
mod sql;

/// One lint rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rule {
    /// The stable id: `MS001`.
    pub id: &'static str,
    /// Whether it fails the build or warns.
    pub severity: Severity,
    /// A few words: `drop table`.
    pub title: &'static str,
    /// What it finds, and why that is a problem: one paragraph.
    pub explanation: &'static str,
    /// The safe way to do it: one paragraph.
    pub alternative: &'static str,
    /// The one-line `help:` of its diagnostics.
    pub help: &'static str,
}

/// Every rule, by id.
pub const RULES: &[Rule] = &[
    Rule {
        id: "MS001",
        severity: Severity::Error,
        title: "drop table",
        explanation: "The migration removes a table that existed before it (DROP TABLE, or a rebuild that never renames its new table back). On a database with rows this deletes them for good, and the code that is still running during a deploy fails on the missing table.",
        alternative: "Stop using the table in the code first, ship that, then drop it in a later migration that carries `-- migrate:allow MS001 <why the data can go>`, after a backup. To keep the data, rename the table (MS003) or copy it elsewhere first.",
        help: "if the data may go, add `-- migrate:allow MS001 <reason>` at the top of the file; `cargo migrate lint --explain MS001`",
    },
    Rule {
        id: "MS002",
        severity: Severity::Error,
        title: "drop column",
        explanation: "A column of a table that stays is gone after the migration: ALTER TABLE … DROP COLUMN, or a table rebuild (new table, copy, drop, rename) whose new table leaves the column out. Its data is lost, and code that still reads or writes it fails.",
        alternative: "Make the code stop using the column and ship it; then drop the column in a migration of its own with `-- migrate:allow MS002 <reason>`. In a rebuild meant to keep every column, add the missing one to the new table and to the INSERT … SELECT.",
        help: "keep the column in the new table, or add `-- migrate:allow MS002 <reason>` once no code uses it; `cargo migrate lint --explain MS002`",
    },
    Rule {
        id: "MS003",
        severity: Severity::Warning,
        title: "rename table or column",
        explanation: "ALTER TABLE … RENAME renames a table or a column that existed. The migration itself is safe, but during a deploy the old version of the app still runs against the database and its queries name the old table or column: they fail until every instance runs the new code.",
        alternative: "Do it in steps that both versions survive: add the new column (or table), keep the two in step with triggers while backfilling, move the code to the new name, and drop the old one in a later migration.",
        help: "expand first (add the new name, keep both in step), drop the old name later; or waive it with `-- migrate:allow MS003 <reason>`",
    },
    Rule {
        id: "MS004",
        severity: Severity::Warning,
        title: "unique index on an existing table",
        explanation: "A unique index (CREATE UNIQUE INDEX, or a UNIQUE constraint in a rebuilt table) is added on columns of a table that existed before. The build replays on an empty database, where it always passes; on production data it fails if two rows share a value.",
        alternative: "Find and fix the duplicates first (SELECT col, count(*) … GROUP BY col HAVING count(*) > 1), in a data migration before this one or by hand, then waive the rule with a reason that says why no duplicates can remain.",
        help: "make sure no duplicates exist first (a backfill or a check), then add `-- migrate:allow MS004 <reason>`",
    },
    Rule {
        id: "MS005",
        severity: Severity::Warning,
        title: "NOT NULL on an existing column",
        explanation: "A column that existed and allowed NULL becomes NOT NULL (in SQLite, through a table rebuild). The empty replay passes; on production data the copy into the new table fails on the first row holding NULL.",
        alternative: "Backfill every NULL in an earlier migration (UPDATE … SET col = … WHERE col IS NULL), then make the column NOT NULL, and waive the rule with a reason naming that backfill.",
        help: "backfill the NULLs in an earlier migration, then add `-- migrate:allow MS005 <reason>`",
    },
    Rule {
        id: "MS006",
        severity: Severity::Warning,
        title: "CHECK on an existing table",
        explanation: "A CHECK constraint is added to a table that existed before (in SQLite, through a table rebuild). The empty replay passes; on production data the copy fails on the first row the check rejects.",
        alternative: "Fix or delete the rows the check would reject in an earlier migration, then add the check and waive the rule with a reason.",
        help: "fix the rows it would reject first, then add `-- migrate:allow MS006 <reason>`",
    },
    Rule {
        id: "MS007",
        severity: Severity::Warning,
        title: "column type change",
        explanation: "A column that stays changes its declared type (through a table rebuild). SQLite converts values by the new type's affinity, and a STRICT table rejects values that do not fit: the empty replay passes, production data may not, and code may read values of another type.",
        alternative: "Add a new column of the new type, backfill it with an explicit conversion, move the code to it, and drop the old column later; or waive the rule with a reason saying why every value converts.",
        help: "add a column of the new type and backfill it instead, or add `-- migrate:allow MS007 <reason>`",
    },
    Rule {
        id: "MS008",
        severity: Severity::Warning,
        title: "UPDATE or DELETE without WHERE",
        explanation: "An UPDATE or DELETE without a WHERE clause of its own changes every row of a table that existed before the migration. On an empty replay that is nothing; on production data it can be every row, usually by mistake, and one long write transaction.",
        alternative: "Add the WHERE that says which rows the change is for (WHERE col IS NULL for a backfill). If every row is meant, waive the rule with a reason.",
        help: "add a WHERE clause, or `-- migrate:allow MS008 <reason>` if every row is meant",
    },
    Rule {
        id: "MS009",
        severity: Severity::Warning,
        title: "schema change and bulk data change together",
        explanation: "One migration changes the schema and also runs an UPDATE or DELETE over a table that existed. Both run in one transaction: on a large table the database stays locked for the whole rewrite, and a failure in the data change rolls back the schema change with it.",
        alternative: "Put the schema change and the data change in migrations of their own (add the column; backfill it; then constrain it), so each is short and can be retried alone.",
        help: "split the data change into a migration of its own, or add `-- migrate:allow MS009 <reason>`",
    },
    Rule {
        id: "MS010",
        severity: Severity::Error,
        title: "foreign key to a missing table or column",
        explanation: "After the migration a foreign key points at a table or column that does not exist (the parent was dropped, renamed, or rebuilt without the column, or never existed). SQLite accepts it, but every insert into the child table then fails with a foreign key mismatch once foreign keys are on.",
        alternative: "Recreate the child table with its REFERENCES clause naming the parent that exists, in the same migration as the parent's change, or keep the parent.",
        help: "point the REFERENCES clause at a table and column that exist, in the same migration",
    },
    Rule {
        id: "MS011",
        severity: Severity::Error,
        title: "an expand migration that does not only add",
        explanation: "A migration marked `-- migrate:phase expand` runs while the previous version of the app is still serving: it may only add what the new code needs (tables, nullable or defaulted columns, indexes, views, triggers that keep old and new columns in step, backfills). This one drops, renames, deletes rows, or changes a column (type, NOT NULL) that the old code still uses, so the old code fails during the deploy, and the change cannot be held back like a contract.",
        alternative: "Keep the expand to additions, and move the removal or change into a contract migration (`-- migrate:phase contract` with `-- migrate:contract-of NNNN` naming the expand), which `apply` holds until `cargo migrate up --contract` once every instance runs the new code.",
        help: "move it to a contract migration (`-- migrate:phase contract`, `-- migrate:contract-of NNNN`); `cargo migrate lint --explain MS011`",
    },
    Rule {
        id: "MS012",
        severity: Severity::Error,
        title: "contract without expand",
        explanation: "A contract migration (`-- migrate:phase contract`, `-- migrate:contract-of NNNN`) drops a table or a column that its expand did not supersede. The lint's definition, from the expand's statements: a column `t.c` is superseded when the expand adds a column to `t` (ALTER TABLE t ADD …, the replacement) or creates a trigger on `t` (keeping a replacement in step); a table `t` is superseded when the expand creates a table or a view and one of its statements reads `t` (INSERT … SELECT from it, a trigger on it, the view's query). Otherwise the new code has nowhere else to find the data, and the contract is plain data loss.",
        alternative: "Name the expand that added the replacement (`-- migrate:contract-of NNNN`), or write that expand first: add the new column or table, keep it in step with triggers, backfill it, move the code to it; the contract then drops the old one. If the data may simply go, make it a plain migration with `-- migrate:allow MS001 <reason>` or `MS002`, or waive this rule with `-- migrate:allow MS012 <reason>`.",
        help: "name the expand that adds the replacement in `-- migrate:contract-of`, or add `-- migrate:allow MS012 <reason>`; `cargo migrate lint --explain MS012`",
    },
    Rule {
        id: "MS013",
        severity: Severity::Error,
        title: "table rebuild off SQLite's procedure",
        explanation: "SQLite changes a table other than by ADD, RENAME or DROP COLUMN through a rebuild, and its manual (https://www.sqlite.org/lang_altertable.html, \"Making Other Kinds Of Table Schema Changes\") gives the order: CREATE TABLE new_X, INSERT INTO new_X SELECT … FROM X, DROP TABLE X, ALTER TABLE new_X RENAME TO X, in one transaction, then CREATE INDEX and CREATE TRIGGER again for X's indexes and triggers (dropped with X), and views that name X must still work. This migration rebuilds a table and misses a step: the rows are not copied, the old table is renamed first (which moves the foreign keys, triggers and views naming it onto the copy that is then dropped), it runs outside a transaction, an index or trigger is gone, or a view no longer works.",
        alternative: "Follow the procedure in that order, in a migration that runs in a transaction (no `-- migrate:no-transaction`): create the new table under another name, copy every row with INSERT INTO new SELECT … FROM old, drop the old table, rename the new one, then recreate the old table's indexes and triggers and drop and recreate the views the change breaks.",
        help: "follow SQLite's rebuild procedure (create new, copy, drop old, rename new, recreate indexes and triggers); `cargo migrate lint --explain MS013`",
    },
    Rule {
        id: "MS014",
        severity: Severity::Warning,
        title: "index without CONCURRENTLY (PostgreSQL)",
        explanation: "CREATE INDEX on a table that exists (not created in the same migration) without CONCURRENTLY holds a SHARE lock on the table until the index is built: on a large table, every INSERT, UPDATE and DELETE waits that long (PostgreSQL's manual, CREATE INDEX, \"Building Indexes Concurrently\").",
        alternative: "Use CREATE INDEX CONCURRENTLY in a migration of its own marked `-- migrate:no-transaction` (PostgreSQL refuses it inside a transaction); if it fails, it leaves an INVALID index to drop (DROP INDEX CONCURRENTLY) before trying again. For a unique constraint, build the unique index concurrently and then ADD CONSTRAINT … UNIQUE USING INDEX.",
        help: "use CREATE INDEX CONCURRENTLY in a `-- migrate:no-transaction` migration, or add `-- migrate:allow MS014 <reason>`",
    },
    Rule {
        id: "MS015",
        severity: Severity::Warning,
        title: "SET NOT NULL without a validated CHECK (PostgreSQL)",
        explanation: "ALTER TABLE … ALTER COLUMN … SET NOT NULL on a column that exists scans the whole table under an ACCESS EXCLUSIVE lock (no reads, no writes) to prove no row holds NULL, and fails on production data that does. Since PostgreSQL 12 the scan is skipped when a valid CHECK (col IS NOT NULL) constraint already proves it (the manual, ALTER TABLE, SET NOT NULL). The lint looks for such a constraint added by an earlier statement or migration without NOT VALID, or validated with VALIDATE CONSTRAINT.",
        alternative: "In steps: ADD CONSTRAINT t_col_not_null CHECK (col IS NOT NULL) NOT VALID (instant); backfill the NULLs; VALIDATE CONSTRAINT t_col_not_null (scans without blocking writes); then SET NOT NULL (instant) and DROP CONSTRAINT t_col_not_null.",
        help: "add CHECK (col IS NOT NULL) NOT VALID and VALIDATE it first, or add `-- migrate:allow MS015 <reason>`",
    },
    Rule {
        id: "MS016",
        severity: Severity::Warning,
        title: "volatile default on ADD COLUMN (PostgreSQL)",
        explanation: "Since PostgreSQL 11, ADD COLUMN with a non-volatile DEFAULT (a constant, now()) is instant: the value is stored once in the catalog. A volatile default (random(), clock_timestamp(), gen_random_uuid(), nextval() of a serial or identity column) or a stored generated column is computed for each row, so PostgreSQL rewrites the whole table and its indexes under an ACCESS EXCLUSIVE lock (the manual, ALTER TABLE, Notes). A function the lint does not know counts as volatile, PostgreSQL's own default for CREATE FUNCTION.",
        alternative: "Add the column without the default (or with a constant one), set the volatile default with ALTER COLUMN … SET DEFAULT (which applies to new rows only), and backfill the existing rows in batches (UPDATE … WHERE id BETWEEN …).",
        help: "add the column without the volatile default, SET DEFAULT after, backfill in batches; or add `-- migrate:allow MS016 <reason>`",
    },
    Rule {
        id: "MS017",
        severity: Severity::Warning,
        title: "type change that rewrites the table (PostgreSQL)",
        explanation: "ALTER COLUMN … TYPE rewrites the whole table and its indexes under an ACCESS EXCLUSIVE lock, and fails on values that do not convert, unless the old type is binary coercible to the new one (the manual, ALTER TABLE, Notes). The lint knows few such cases and is conservative: a longer or no varchar limit, varchar to text and text to unlimited varchar, a larger numeric precision with the same scale; every other change, a USING clause, or a column whose type the earlier migrations do not show, counts as a rewrite.",
        alternative: "Add a new column of the new type, keep it in step with a trigger, backfill it in batches, move the code to it, and drop the old column in a contract migration. If the change is binary coercible (a domain over the same type, say), waive the rule with that reason.",
        help: "add a column of the new type and backfill it instead, or add `-- migrate:allow MS017 <reason>`",
    },
    Rule {
        id: "MS018",
        severity: Severity::Warning,
        title: "foreign key without NOT VALID (PostgreSQL)",
        explanation: "ALTER TABLE … ADD FOREIGN KEY on a table that exists checks every row while holding SHARE ROW EXCLUSIVE locks on both tables: no writes to either until the check ends, and it fails on production rows that point at nothing.",
        alternative: "Add it with NOT VALID (instant: only new rows are checked), then VALIDATE CONSTRAINT in a later migration, which checks the old rows without blocking writes.",
        help: "add the foreign key NOT VALID, then VALIDATE CONSTRAINT in a later migration; or add `-- migrate:allow MS018 <reason>`",
    },
    Rule {
        id: "MS019",
        severity: Severity::Warning,
        title: "strong lock without lock_timeout (PostgreSQL)",
        explanation: "ALTER TABLE, DROP TABLE, TRUNCATE, LOCK, CREATE TRIGGER and CREATE INDEX without CONCURRENTLY lock a table that exists (the manual, Explicit Locking). Behind a long query the statement waits for its lock, and every query on the table queues behind it: a short migration stops the app. The lint looks for `SET lock_timeout`, `SET LOCAL lock_timeout` (not in a `-- migrate:no-transaction` migration, where it does nothing) or set_config('lock_timeout', …) before the statement. `lock_timeout` in [package.metadata.migrate] does not count: it bounds the wait for the migration lock between runners, not the statements' table locks.",
        alternative: "Start the migration with `SET LOCAL lock_timeout = '2s';`: the statement fails instead of blocking the app, and the deploy tries again later. An app that runs its migrations with Migrator::table_lock_timeout gets the same: waive the rule with that reason.",
        help: "start the migration with `SET LOCAL lock_timeout = '2s';`, or add `-- migrate:allow MS019 <reason>`",
    },
];

/// The findings that, in an expand migration, break the code still
/// running: they become [`EXPAND`] errors.
const BREAKS_OLD_CODE: &[&str] = &["MS001", "MS002", "MS003", "MS005", "MS007", "MS015", "MS017"];

/// The rule for an expand migration that does not only add.
const EXPAND: &str = "MS011";

/// What a contract migration is for, which its `-- migrate:contract-of`
/// (checked to name an earlier expand) waives: renaming, and dropping
/// what the expand superseded (else [`CONTRACT_WITHOUT_EXPAND`]).
const CONTRACT_WAIVES: &[&str] = &["MS001", "MS002", "MS003"];

/// The rule for a contract that drops what its expand did not supersede.
const CONTRACT_WITHOUT_EXPAND: &str = "MS012";

/// The expand a contract names: its file, as shown, and its statements.
struct Expand<'a> {
    display: &'a str,
    statements: Vec<sql::Statement>,
}

/// Whether the expand's statements supersede what a contract removes
/// (the definition `--explain MS012` gives): a column `t.c` when the
/// expand adds a column to `t` or a trigger on it; a table `t` when the
/// expand creates a table or view and one of its statements reads `t`.
fn superseded(removed: &rules::Removed, expand: &[sql::Statement]) -> bool {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match removed {
        rules::Removed::Column(table, _) => expand.iter().any(|s| {
            s.altered_table().is_some_and(|t| same(&t, table)) && s.adds_column()
                || s.trigger_table().is_some_and(|t| same(&t, table))
        }),
        rules::Removed::Table(table) => {
            let makes_it = |s: &sql::Statement| s.created().is_some_and(|t| same(&t, table));
            let creates = expand.iter().any(|s| s.created().is_some() && !makes_it(s));
            creates && expand.iter().any(|s| !makes_it(s) && s.names(table))
        }
    }
}

/// The findings as the migration's phase makes them: in an expand, the
/// findings of rules that break the old code become [`EXPAND`] findings,
/// and a statement that drops, renames or deletes rows is one too (once
/// per line); in a contract, the renames and the drops it exists for do
/// not fire, and a drop its expand did not supersede is a
/// [`CONTRACT_WITHOUT_EXPAND`] finding.
fn phase_findings(
    phase: Option<migrate_runtime::Phase>,
    statements: &[sql::Statement],
    findings: Vec<rules::Finding>,
    expand: Option<&Expand<'_>>,
) -> Vec<rules::Finding> {
    match phase {
        Some(migrate_runtime::Phase::Expand) => {}
        Some(migrate_runtime::Phase::Contract) => {
            return findings
                .into_iter()
                .filter_map(|f| {
                    if !CONTRACT_WAIVES.contains(&f.rule) {
                        return Some(f);
                    }
                    let (Some(removed), Some(expand)) = (&f.removes, expand) else {
                        return None;
                    };
                    if superseded(removed, &expand.statements) {
                        return None;
                    }
                    let why = match removed {
                        rules::Removed::Column(t, _) => format!("it adds no column to `{t}` and no trigger on it"),
                        rules::Removed::Table(t) => format!("it creates no table or view that reads `{t}`"),
                    };
                    Some(rules::Finding {
                        rule: CONTRACT_WITHOUT_EXPAND,
                        line: f.line,
                        message: format!(
                            "contract without expand: {}, which its expand {} does not supersede ({why})",
                            f.message, expand.display
                        ),
                        removes: None,
                    })
                })
                .collect();
        }
        _ => return findings,
    }
    let mut out = Vec::new();
    for f in findings {
        if BREAKS_OLD_CODE.contains(&f.rule) {
            out.push(rules::Finding {
                removes: None,
                rule: EXPAND,
                line: f.line,
                message: format!("an expand migration {} ({})", f.message, f.rule),
            });
        } else {
            out.push(f);
        }
    }
    for s in statements {
        let what = if s.starts(&["DROP"]) {
            "drops"
        } else if s.starts(&["DELETE"]) {
            "deletes rows"
        } else if s.starts(&["ALTER", "TABLE"]) && s.toks.iter().any(|t| t.is("RENAME")) {
            "renames"
        } else {
            continue;
        };
        if !out.iter().any(|f| f.rule == EXPAND && f.line == s.line) {
            out.push(rules::Finding {
                removes: None,
                rule: EXPAND,
                line: s.line,
                message: format!("an expand migration {what}: it may only add"),
            });
        }
    }
    out.sort_by_key(|f| f.line);
    out
}

/// The rule with id `id` (any letter case).
///
/// # Examples
///
/// ```
/// let rule = migrate_build::lint::rule("ms002").unwrap();
/// assert_eq!(rule.title, "drop column");
/// assert!(migrate_build::lint::rule("MS999").is_none());
/// ```
#[must_use]
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

/// The rule a problem of the build comes from, when it is a lint finding
/// (its message starts with the rule's id).
#[must_use]
pub fn rule_of(problem: &Problem) -> Option<&'static Rule> {
    problem.message.split_once(' ').and_then(|(id, _)| rule(id))
}

/// The text of `cargo migrate lint --explain ID`.
#[must_use]
pub fn explain(rule: &Rule) -> String {
    let severity = if rule.severity == Severity::Error {
        "error"
    } else {
        "warning"
    };
    format!(
        "{} ({severity}): {}\n\n{}\n\nSafe alternative: {}\n\nWaive it for one migration, at the top of its up script:\n    -- migrate:allow {} <reason>\n",
        rule.id, rule.title, rule.explanation, rule.alternative, rule.id
    )
}

/// One `-- migrate:allow` line of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Waiver {
    /// 1-based line.
    pub(crate) line: usize,
    /// The rule it waives.
    pub(crate) rule: &'static str,
}

/// The statements of a SQLite up script, as the runtime splits them.
fn sqlite_statements(text: &str) -> Vec<sql::Statement> {
    migrate_runtime::statements(text)
        .into_iter()
        .map(|(line, text)| sql::Statement::new(line, text))
        .collect()
}

/// The views of the database on `conn` that no longer work, with
/// SQLite's reason: (view, error).
pub(crate) fn broken_views(conn: &rusqlite::Connection, model: &Model) -> Vec<(String, String)> {
    model
        .views
        .keys()
        .filter_map(|name| {
            let sql = format!("SELECT * FROM \"{}\" LIMIT 0", name.replace('"', "\"\""));
            conn.prepare(&sql).err().map(|e| (name.clone(), e.to_string()))
        })
        .collect()
}

/// Lints the migrations from version `from` on: replays their ups into
/// an in-memory database (set up by `setup`), reads the schema model
/// before and after each, runs every rule, and applies the files'
/// waivers. Returns the findings as problems (and a warning for each
/// waiver of a rule that did not fire).
pub(crate) fn run(
    found: &[Found],
    migrator: &Migrator<'_>,
    filter: &Filter,
    setup: &dyn Fn(&rusqlite::Connection) -> rusqlite::Result<()>,
    from: u64,
) -> Result<Vec<Problem>, migrate_runtime::Error> {
    let db_error = |doing: &str| {
        let doing = doing.to_owned();
        move |cause| migrate_runtime::Error::Database { doing, cause }
    };
    let Some(first) = found.iter().position(|m| m.version >= from) else {
        return Ok(Vec::new());
    };
    let mut conn = rusqlite::Connection::open_in_memory().map_err(db_error("opening an in-memory database"))?;
    setup(&conn).map_err(db_error(
        "setting up the lint's replay database (functions, replay_setup)",
    ))?;
    if let Some(previous) = first.checked_sub(1) {
        migrator.migrate_to(&mut conn, found[previous].version)?;
    }
    // The schema after the previous migration, when it was read.
    let mut carried: Option<Model> = None;
    let mut problems = Vec::new();
    for m in &found[first..] {
        let statements = sqlite_statements(&m.up.text);
        let findings = if statements.iter().all(sql::Statement::only_adds) {
            // Nothing a rule looks for: skip reading the schema twice.
            migrator.migrate_to(&mut conn, m.version)?;
            carried = None;
            Vec::new()
        } else {
            let before = match carried.take() {
                Some(model) => model,
                None => Model::read(&conn, filter)?,
            };
            let broken_before = broken_views(&conn, &before);
            migrator.migrate_to(&mut conn, m.version)?;
            let after = Model::read(&conn, filter)?;
            let mut broken = broken_views(&conn, &after);
            broken.retain(|b| !broken_before.iter().any(|o| o.0 == b.0));
            let findings = rules::all(&rules::Input {
                statements: &statements,
                before: &before,
                after: &after,
                no_transaction: m.up.no_transaction,
                broken_views: &broken,
            });
            carried = Some(after);
            findings
        };
        report(found, m, &statements, findings, &sqlite_statements, &mut problems);
    }
    Ok(problems)
}

/// Lints PostgreSQL migrations from version `from` on, without a server:
/// the rules of the `pg` module, on each migration's statements and what
/// the statements of every migration before it made (from the first, so
/// `lint_from` skips judging history, not knowing it).
pub(crate) fn run_postgres(found: &[Found], from: u64) -> Vec<Problem> {
    let mut schema = pg::Schema::default();
    let mut problems = Vec::new();
    let shared = |text: &str| pg::statements(text).into_iter().map(|s| s.statement).collect();
    for m in found {
        let statements = pg::statements(&m.up.text);
        let findings = pg::findings(&mut schema, &statements, m.up.no_transaction);
        if m.version < from {
            continue;
        }
        let statements: Vec<sql::Statement> = statements.into_iter().map(|s| s.statement).collect();
        report(found, m, &statements, findings, &shared, &mut problems);
    }
    problems
}

/// Turns a migration's findings into problems: through its phase (and,
/// for a contract, its expand's statements, read by `read`), then its
/// waivers; a waiver of a rule that did not fire, and one in a down
/// script, are warnings.
fn report(
    found: &[Found],
    m: &Found,
    statements: &[sql::Statement],
    findings: Vec<rules::Finding>,
    read: &dyn Fn(&str) -> Vec<sql::Statement>,
    problems: &mut Vec<Problem>,
) {
    let expand =
        m.up.contract_of
            .and_then(|(version, _)| found.iter().find(|e| e.version == version))
            .map(|e| Expand {
                display: &e.up.display,
                statements: read(&e.up.text),
            });
    let findings = phase_findings(m.up.phase, statements, findings, expand.as_ref());
    let waivers = crate::directives::waivers(&m.up.text);
    for f in &findings {
        if waivers.iter().any(|w| w.rule == f.rule) {
            continue;
        }
        let rule = rule(f.rule).expect("every check has a rule");
        let message = format!("{} {}", rule.id, f.message);
        let p = match rule.severity {
            Severity::Error => Problem::error(&m.up.display, f.line, message),
            _ => Problem::warning(&m.up.display, f.line, message),
        };
        problems.push(p.hint(rule.help));
    }
    for w in waivers.iter().filter(|w| !findings.iter().any(|f| f.rule == w.rule)) {
        problems.push(
            Problem::warning(
                &m.up.display,
                w.line,
                format!(
                    "`-- migrate:allow {}` waives a rule that does not fire on this migration",
                    w.rule
                ),
            )
            .hint("delete the line, so the waiver cannot hide a problem added to the file later"),
        );
    }
    if let Some(down) = &m.down
        && let Some(w) = crate::directives::waivers(&down.text).first()
    {
        problems.push(
            Problem::warning(
                &down.display,
                w.line,
                "`-- migrate:allow` in a down script waives nothing: the lint checks up scripts",
            )
            .hint("move it to the up script, or delete it"),
        );
    }
}

#[cfg(test)]
mod tests;
