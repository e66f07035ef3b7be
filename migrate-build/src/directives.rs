//! `-- migrate:…` directives at the top of a migration file.

use crate::problem::Problem;

/// The directives a file may carry.
pub const DIRECTIVES: &[&str] = &[
    "no-transaction",
    "squashes",
    "earlier-squash",
    "allow MS00N reason",
    "phase expand|contract",
    "contract-of NNNN",
    "batch N",
];

/// What the directives at the top of one file say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Directives {
    /// `-- migrate:no-transaction`.
    pub no_transaction: bool,
    /// `-- migrate:phase expand|contract`, and its line.
    pub phase: Option<(migrate_runtime::Phase, usize)>,
    /// `-- migrate:contract-of NNNN`: the expand's version, and the line.
    pub contract_of: Option<(u64, usize)>,
    /// `-- migrate:batch N`: rows per batch, and the line.
    pub batch: Option<(u64, usize)>,
}

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
    parse(text, shown, problems).map(|d| d.no_transaction)
}

/// [`directives`], with everything they say.
///
/// # Examples
///
/// ```
/// use migrate_runtime::Phase;
///
/// let mut problems = Vec::new();
/// let sql = "-- migrate:phase contract\n-- migrate:contract-of 0007\nALTER TABLE users DROP COLUMN name;\n";
/// let d = migrate_build::directives::parse(sql, "0008_drop_name.sql", &mut problems).unwrap();
/// assert_eq!(d.phase, Some((Phase::Contract, 1)));
/// assert_eq!(d.contract_of, Some((7, 2)));
/// ```
pub fn parse(text: &str, shown: &str, problems: &mut Vec<Problem>) -> Option<Directives> {
    let mut found = Directives::default();
    let mut header = true;
    let mut ok = true;
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let trimmed = line.trim();
        // `-- migrate:NAME`: one word after the colon. A comment that merely
        // starts with "Migrate:" followed by prose is not a directive.
        let directive = directive_text(trimmed)
            // `squashes` takes arguments (see migrate_runtime::Squash).
            .map(|name| {
                if name.starts_with("squashes ") {
                    "squashes"
                } else if name.starts_with("earlier-squash ") {
                    "earlier-squash"
                } else {
                    name
                }
            })
            .filter(|name| {
                !name.is_empty()
                    && (!name.contains(char::is_whitespace)
                        || allow_args(name).is_some()
                        || phase_args(name).is_some()
                        || batch_args(name).is_some())
            });
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
            Some("no-transaction") => found.no_transaction = true,
            Some(text) if phase_args(text).is_some() => {
                if let Err(problem) = phase_directive(text, shown, i + 1, &mut found) {
                    problems.push(*problem);
                    ok = false;
                }
            }
            Some("squashes") => {
                if let Some(Err(message)) = migrate_runtime::Squash::of(line) {
                    problems.push(
                        Problem::error(shown, i + 1, message)
                            .hint("`cargo migrate squash --to N` writes this directive; restore it as it wrote it"),
                    );
                    ok = false;
                }
            }
            Some("earlier-squash") => {
                if let Some(Err(message)) = migrate_runtime::EarlierSquash::all(line).pop() {
                    problems.push(
                        Problem::error(shown, i + 1, message)
                            .hint("`cargo migrate squash --to N` writes this directive; restore it as it wrote it"),
                    );
                    ok = false;
                }
            }
            Some(text) if batch_args(text).is_some() => {
                if let Err(problem) = batch_directive(batch_args(text).unwrap_or_default(), shown, i + 1, &mut found) {
                    problems.push(*problem);
                    ok = false;
                }
            }
            Some(text) if allow_args(text).is_some() => {
                if let Some(problem) = check_waiver(allow_args(text).unwrap_or_default(), shown, i + 1) {
                    problems.push(problem);
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
    if ok && let Err(problem) = check_phase(&found, shown) {
        problems.push(*problem);
        ok = false;
    }
    ok.then_some(found)
}

/// The directive's name and arguments when it is `phase …` or
/// `contract-of …` (the arguments may be empty).
fn phase_args(text: &str) -> Option<(&str, &str)> {
    let (name, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    matches!(name, "phase" | "contract-of").then(|| (name, args.trim()))
}

/// `-- migrate:{name}` at `line` repeats the one at line `first`.
fn given_twice(name: &str, shown: &str, line: usize, first: usize) -> Box<Problem> {
    Box::new(
        Problem::error(
            shown,
            line,
            format!("`-- migrate:{name}` is given twice (first on line {first})"),
        )
        .hint("keep one"),
    )
}

/// Reads `phase …` or `contract-of …` at `line` into `found`.
fn phase_directive(text: &str, shown: &str, line: usize, found: &mut Directives) -> Result<(), Box<Problem>> {
    let (name, args) = phase_args(text).unwrap_or_default();
    let twice = |first: usize| given_twice(name, shown, line, first);
    if name == "phase" {
        if let Some((_, first)) = found.phase {
            return Err(twice(first));
        }
        let phase = args.parse::<migrate_runtime::Phase>().map_err(|_| {
            Box::new(
                Problem::error(
                    shown,
                    line,
                    if args.is_empty() {
                        "`-- migrate:phase` names no phase".to_owned()
                    } else {
                        format!("unknown phase `{args}` in `-- migrate:phase {args}`")
                    },
                )
                .hint("write `-- migrate:phase expand` (adds only) or `-- migrate:phase contract` (removes what an expand superseded)"),
            )
        })?;
        found.phase = Some((phase, line));
        return Ok(());
    }
    if let Some((_, first)) = found.contract_of {
        return Err(twice(first));
    }
    let version = args
        .parse::<u64>()
        .ok()
        .filter(|v| *v >= 1 && args.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            Box::new(
                Problem::error(
                    shown,
                    line,
                    format!("`-- migrate:contract-of {args}` does not name a version"),
                )
                .hint(
                    "write the version of the expand migration this contract completes: `-- migrate:contract-of 0007`",
                ),
            )
        })?;
    found.contract_of = Some((version, line));
    Ok(())
}

/// The arguments of a `batch` directive (`1000`), possibly empty.
fn batch_args(text: &str) -> Option<&str> {
    let (name, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    (name == "batch").then(|| args.trim())
}

/// Reads `-- migrate:batch N` at `line` into `found`.
fn batch_directive(args: &str, shown: &str, line: usize, found: &mut Directives) -> Result<(), Box<Problem>> {
    if let Some((_, first)) = found.batch {
        return Err(given_twice("batch", shown, line, first));
    }
    let rows = args
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= 1 && args.bytes().all(|b| b.is_ascii_digit()) && i64::try_from(*n).is_ok())
        .ok_or_else(|| {
            Box::new(
                Problem::error(
                    shown,
                    line,
                    if args.is_empty() {
                        "`-- migrate:batch` says no batch size".to_owned()
                    } else {
                        format!("`-- migrate:batch {args}`: the batch size is not a number of rows of at least 1")
                    },
                )
                .hint("write the rows per batch, e.g. `-- migrate:batch 1000` (each batch is one short transaction)"),
            )
        })?;
    found.batch = Some((rows, line));
    Ok(())
}

/// A contract names its expand, and only a contract names one.
fn check_phase(found: &Directives, shown: &str) -> Result<(), Box<Problem>> {
    use migrate_runtime::Phase;
    match (found.phase, found.contract_of) {
        (Some((Phase::Contract, line)), None) => Err(Box::new(
            Problem::error(shown, line, "a contract migration without `-- migrate:contract-of`").hint(
                "name the expand migration it completes on the next line: `-- migrate:contract-of NNNN` (a contract without its expand is data loss)",
            ),
        )),
        (phase, Some((version, line))) if phase.is_none_or(|(p, _)| p != Phase::Contract) => Err(Box::new(
            Problem::error(
                shown,
                line,
                format!("`-- migrate:contract-of {version}` on a migration that is not a contract"),
            )
            .hint("add `-- migrate:phase contract` above it, or remove the line"),
        )),
        _ => Ok(()),
    }
}

/// What follows `-- migrate:` on a comment line, trimmed.
fn directive_text(line: &str) -> Option<&str> {
    line.strip_prefix("--").map(str::trim_start).and_then(|rest| {
        rest.get(..8)
            .filter(|p| p.eq_ignore_ascii_case("migrate:"))
            .map(|_| rest[8..].trim())
    })
}

/// The arguments of an `allow` directive (`MS002 reason text`).
fn allow_args(text: &str) -> Option<&str> {
    let (name, args) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    (name == "allow").then(|| args.trim())
}

/// What is wrong with the arguments of `-- migrate:allow` at `line`: a
/// missing or unknown rule id, or a missing reason.
fn check_waiver(args: &str, shown: &str, line: usize) -> Option<Problem> {
    let (id, reason) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    let ids = || crate::lint::RULES.iter().map(|r| r.id).collect::<Vec<_>>().join(", ");
    if id.is_empty() {
        return Some(
            Problem::error(shown, line, "`-- migrate:allow` names no rule").hint(format!(
                "write `-- migrate:allow MS00N reason`; the rules are {}",
                ids()
            )),
        );
    }
    if crate::lint::rule(id).is_none() {
        return Some(
            Problem::error(
                shown,
                line,
                format!("`-- migrate:allow {id}`: there is no lint rule {id}"),
            )
            .hint(format!("the rules are {} (`cargo migrate lint --explain ID`)", ids())),
        );
    }
    if reason.trim().is_empty() {
        return Some(
            Problem::error(shown, line, format!("`-- migrate:allow {id}` gives no reason")).hint(format!(
                "say after the id why the change is safe here: `-- migrate:allow {id} <reason>`"
            )),
        );
    }
    None
}

/// The valid `-- migrate:allow` waivers at the top of `text` (the ones
/// [`directives`] accepts).
pub(crate) fn waivers(text: &str) -> Vec<crate::lint::Waiver> {
    let mut out = Vec::new();
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let trimmed = line.trim();
        if !(trimmed.is_empty() || trimmed.starts_with("--")) {
            break;
        }
        let Some(args) = directive_text(trimmed).and_then(allow_args) else {
            continue;
        };
        let id = args.split_whitespace().next().unwrap_or_default();
        if check_waiver(args, "", 0).is_none()
            && let Some(rule) = crate::lint::rule(id)
        {
            out.push(crate::lint::Waiver {
                line: i + 1,
                rule: rule.id,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_directives() {
        use migrate_runtime::Phase;
        let mut p = Vec::new();
        let d = parse("-- migrate:phase expand\nALTER TABLE t ADD COLUMN c TEXT;", "f", &mut p).unwrap();
        assert_eq!(d.phase, Some((Phase::Expand, 1)));
        assert_eq!(d.contract_of, None);
        let d = parse(
            "-- migrate:phase contract\n-- migrate:contract-of 7\nSELECT 1;",
            "f",
            &mut p,
        )
        .unwrap();
        assert_eq!((d.phase, d.contract_of), (Some((Phase::Contract, 1)), Some((7, 2))));
        assert!(p.is_empty());
        let bad = [
            ("-- migrate:phase expnd\n", 1, "unknown phase `expnd`"),
            ("-- migrate:phase\n", 1, "names no phase"),
            (
                "-- migrate:phase contract\nSELECT 1;",
                1,
                "without `-- migrate:contract-of`",
            ),
            ("-- migrate:contract-of 0007\n", 1, "not a contract"),
            (
                "-- migrate:phase expand\n-- migrate:contract-of 7\n",
                2,
                "not a contract",
            ),
            (
                "-- migrate:phase contract\n-- migrate:contract-of seven\n",
                2,
                "does not name a version",
            ),
            (
                "-- migrate:phase expand\n-- migrate:phase contract\n",
                2,
                "given twice (first on line 1)",
            ),
        ];
        for (text, line, message) in bad {
            p.clear();
            assert_eq!(parse(text, "f", &mut p), None, "{text}");
            assert_eq!(
                (p[0].line, p[0].message.contains(message)),
                (line, true),
                "{text}: {}",
                p[0]
            );
        }
    }

    #[test]
    fn batch_directive() {
        let mut p = Vec::new();
        let d = parse("-- migrate:batch 500\nUPDATE t SET a = 1 WHERE a IS NULL;", "f", &mut p).unwrap();
        assert_eq!(d.batch, Some((500, 1)));
        for (text, line, message) in [
            ("-- migrate:batch 0\n", 1, "at least 1"),
            ("-- migrate:batch -5\n", 1, "at least 1"),
            ("-- migrate:batch 1e3\n", 1, "at least 1"),
            ("-- migrate:batch\n", 1, "says no batch size"),
            (
                "-- migrate:batch 10\n-- migrate:batch 20\n",
                2,
                "given twice (first on line 1)",
            ),
        ] {
            p.clear();
            assert_eq!(parse(text, "f", &mut p), None, "{text}");
            assert_eq!(
                (p[0].line, p[0].message.contains(message)),
                (line, true),
                "{text}: {}",
                p[0]
            );
        }
    }

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
        p.clear();
        let sql = "-- migrate:allow MS002 nobody reads it since 2024\nALTER TABLE t DROP COLUMN c;";
        assert_eq!(directives(sql, "f", &mut p), Some(false));
        assert!(p.is_empty());
        assert_eq!(waivers(sql).len(), 1);
        assert_eq!(directives("-- migrate:allow MS002\n", "f", &mut p), None);
        assert_eq!(directives("-- migrate:allow MS999 why\n", "f", &mut p), None);
        assert_eq!(directives("-- migrate:allow\n", "f", &mut p), None);
        assert!(p[0].message.contains("gives no reason"), "{}", p[0]);
        assert!(p[1].message.contains("no lint rule MS999"), "{}", p[1]);
        assert!(p[2].message.contains("names no rule"), "{}", p[2]);
    }
}
