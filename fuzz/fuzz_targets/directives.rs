//! `migrate_build::scan::directives(text, shown, problems)`: the
//! `-- migrate:NAME` lines at the top of a migration file.
//!
//! Input: the file's text (UTF-8, lossily).
//!
//! Checks: it never panics; it returns `None` exactly when it added at least
//! one error problem (and adds nothing when it returns `Some`); every problem
//! names `shown` and a line in 1..=the text's line count; and the same text
//! with CRLF line ends gives the same answer at the same lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use migrate_build::scan::directives;
use std::path::Path;

const SHOWN: &str = "migrations/0001_fuzz.up.sql";

fn run(text: &str) -> (Option<bool>, Vec<usize>) {
    let mut problems = Vec::new();
    let result = directives(text, SHOWN, &mut problems);
    let lines = text.lines().count();
    let errors = problems.iter().filter(|p| p.is_error()).count();
    assert_eq!(
        result.is_none(),
        errors > 0,
        "{text:?}: returned {result:?} with problems {problems:?}"
    );
    if result.is_some() {
        assert!(
            problems.is_empty(),
            "{text:?}: returned {result:?} but added {problems:?}"
        );
    }
    for p in &problems {
        assert_eq!(p.file, Path::new(SHOWN), "{text:?}: {p:?}");
        assert!(
            (1..=lines).contains(&p.line),
            "{text:?} ({lines} lines): problem at line {}: {p}",
            p.line
        );
        let _ = p.to_string();
    }
    (result, problems.iter().map(|p| p.line).collect())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lf = run(&text);
    if text.contains('\n') {
        let crlf = run(&text.replace('\n', "\r\n"));
        assert_eq!(lf, crlf, "{text:?}: LF and CRLF line ends disagree");
    }
});
