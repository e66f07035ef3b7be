//! `migrate_runtime::statement_lines(sql)`: the runner's statement splitter.
//!
//! Input: the script (UTF-8, lossily).
//!
//! Checks: it never panics; the lines are non-decreasing and each within
//! 1..=the script's line count; and three rewrites that change no statement
//! move the lines as expected: CRLF line ends (same lines), a leading
//! comment line (every line + 1), a trailing newline (same lines).
#![no_main]

use libfuzzer_sys::fuzz_target;
use migrate_runtime::statement_lines;

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    let lines = statement_lines(&sql);
    let count = sql.lines().count();
    for pair in lines.windows(2) {
        assert!(pair[0] <= pair[1], "{sql:?}: lines go backwards: {lines:?}");
    }
    for &l in &lines {
        assert!(
            (1..=count).contains(&l),
            "{sql:?} ({count} lines): statement at line {l}: {lines:?}"
        );
    }
    let crlf = statement_lines(&sql.replace('\n', "\r\n"));
    assert_eq!(lines, crlf, "{sql:?}: CRLF line ends change the statements");
    let shifted: Vec<usize> = lines.iter().map(|l| l + 1).collect();
    let commented = statement_lines(&format!("-- a comment; with a semicolon\n{sql}"));
    assert_eq!(
        shifted, commented,
        "{sql:?}: a leading comment line changes the statements"
    );
    let trailing = statement_lines(&format!("{sql}\n"));
    assert_eq!(lines, trailing, "{sql:?}: a trailing newline changes the statements");
});
