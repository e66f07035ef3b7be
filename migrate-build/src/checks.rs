//! Checks on a migration's SQL that warn without failing the build.

use crate::problem::Problem;

/// The 1-based lines of `PRAGMA foreign_keys = OFF` statements (any case and
/// spacing, `= 0`, `= false`, `= no`, `('off')`, a `main.` prefix) in `sql`.
fn foreign_keys_off(sql: &str) -> Vec<usize> {
    let starts = migrate_runtime::statement_lines(sql);
    let lower = sql.to_ascii_lowercase();
    let mut lines = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find("pragma") {
        let at = from + found;
        from = at + "pragma".len();
        let line_start = lower[..at].rfind('\n').map_or(0, |i| i + 1);
        let before = lower[line_start..at].trim();
        if !(before.is_empty() || before.ends_with(';')) {
            continue;
        }
        let line = crate::line_at(sql.as_bytes(), at);
        if !starts.contains(&line) {
            continue;
        }
        let rest: String = lower[from..]
            .chars()
            .take_while(|&c| c != ';')
            .filter(|c| !c.is_whitespace() && !matches!(c, '\'' | '"' | '(' | ')'))
            .collect();
        let rest = rest.strip_prefix("main.").unwrap_or(&rest);
        let Some(value) = rest
            .strip_prefix("foreign_keys=")
            .or_else(|| rest.strip_prefix("foreign_keys").filter(|v| !v.is_empty()))
        else {
            continue;
        };
        if matches!(value, "off" | "0" | "false" | "no") {
            lines.push(line);
        }
    }
    lines
}

/// Warnings for SQL that does not do what it says: `PRAGMA foreign_keys =
/// OFF` in a migration that runs in a transaction, where SQLite ignores it.
pub(crate) fn warnings(sql: &str, shown: &str, no_transaction: bool, problems: &mut Vec<Problem>) {
    if no_transaction {
        return;
    }
    for line in foreign_keys_off(sql) {
        problems.push(
            Problem::warning(
                shown,
                line,
                "`PRAGMA foreign_keys = OFF` does nothing here: the migration runs in a transaction, where SQLite ignores it",
            )
            .hint("delete it: the runner already turns foreign keys off around each migration and checks them before commit, as SQLite's table-rebuild procedure asks; if the migration must run outside a transaction, make its first line `-- migrate:no-transaction`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_foreign_keys_off_in_any_spelling() {
        let sql = "PRAGMA foreign_keys=OFF;\n\
                   CREATE TABLE t (x);\n  pragma   FOREIGN_KEYS =  0 ;\n\
                   SELECT 1; PRAGMA main.foreign_keys = 'off';\n\
                   PRAGMA foreign_keys(false);\n\
                   PRAGMA foreign_keys = ON;\n\
                   PRAGMA foreign_keys;\n\
                   PRAGMA foreign_key_check;\n\
                   -- PRAGMA foreign_keys = OFF;\n\
                   SELECT 'PRAGMA foreign_keys = OFF;';\n\
                   PRAGMA\n  foreign_keys\n  = no;\n";
        assert_eq!(foreign_keys_off(sql), [1, 3, 4, 5, 11]);
    }

    #[test]
    fn warns_only_in_a_transaction() {
        let mut problems = Vec::new();
        warnings("PRAGMA foreign_keys = OFF;\n", "m.sql", true, &mut problems);
        assert!(problems.is_empty());
        warnings(
            "CREATE TABLE a (x);\nPRAGMA foreign_keys = OFF;\n",
            "m.sql",
            false,
            &mut problems,
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].location(), "m.sql:2");
        assert!(!problems[0].is_error());
    }
}
