//! `-- migrate:…` directives at the top of a migration file.

use crate::problem::Problem;

/// The directives a file may carry.
pub const DIRECTIVES: &[&str] = &["no-transaction", "squashes"];

/// Reads `-- migrate:…` directives from the comment lines at the top of a
/// file (`shown` names it in problems). Returns whether `no-transaction` is
/// set, or `None` after adding a problem for each unknown or misplaced
/// directive to `problems`.
///
/// # Examples
///
/// ```
/// let mut problems = Vec::new();
/// let sql = "-- migrate:no-transaction\nVACUUM;\n";
/// assert_eq!(migrate_build::directives::directives(sql, "0002_vacuum.sql", &mut problems), Some(true));
/// assert_eq!(migrate_build::directives::directives("-- migrate:nope\n", "f.sql", &mut problems), None);
/// assert_eq!(problems[0].line, 1);
/// ```
pub fn directives(text: &str, shown: &str, problems: &mut Vec<Problem>) -> Option<bool> {
    let mut no_transaction = false;
    let mut header = true;
    let mut ok = true;
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let trimmed = line.trim();
        // `-- migrate:NAME`: one word after the colon. A comment that merely
        // starts with "Migrate:" followed by prose is not a directive.
        let directive = trimmed
            .strip_prefix("--")
            .map(str::trim_start)
            .and_then(|rest| {
                rest.get(..8)
                    .filter(|p| p.eq_ignore_ascii_case("migrate:"))
                    .map(|_| rest[8..].trim())
            })
            // `squashes` takes arguments (see migrate_runtime::Squash).
            .map(|name| {
                if name.starts_with("squashes ") {
                    "squashes"
                } else {
                    name
                }
            })
            .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace));
        match directive {
            Some(name) if !header => {
                problems.push(
                    Problem::error(
                        shown,
                        i + 1,
                        format!("directive `-- migrate:{name}` comes after SQL, where it would be ignored"),
                    )
                    .hint("move it to the top of the file, before any SQL"),
                );
                ok = false;
            }
            Some("no-transaction") => no_transaction = true,
            Some("squashes") => {
                if let Some(Err(message)) = migrate_runtime::Squash::of(line) {
                    problems.push(
                        Problem::error(shown, i + 1, message)
                            .hint("`cargo migrate squash --to N` writes this directive; restore it as it wrote it"),
                    );
                    ok = false;
                }
            }
            Some(name) => {
                problems.push(
                    Problem::error(shown, i + 1, format!("unknown directive `-- migrate:{name}`")).hint(format!(
                        "the known directives are: {}",
                        DIRECTIVES
                            .iter()
                            .map(|d| format!("-- migrate:{d}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
                ok = false;
            }
            None if trimmed.is_empty() || trimmed.starts_with("--") => {}
            None => header = false,
        }
    }
    ok.then_some(no_transaction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_parsing() {
        let mut p = Vec::new();
        assert_eq!(
            directives("-- migrate:no-transaction\nVACUUM;", "f", &mut p),
            Some(true)
        );
        assert_eq!(directives("--migrate:no-transaction\n", "f", &mut p), Some(true));
        assert_eq!(directives("-- just a comment\nSELECT 1;", "f", &mut p), Some(false));
        assert!(p.is_empty());
        assert_eq!(directives("-- migrate:no-transactoin\n", "f", &mut p), None);
        assert_eq!(p[0].line, 1);
        assert!(p[0].message.contains("unknown directive"));
        p.clear();
        assert_eq!(directives("SELECT 1;\n-- migrate:no-transaction\n", "f", &mut p), None);
        assert_eq!(p[0].line, 2);
    }
}
