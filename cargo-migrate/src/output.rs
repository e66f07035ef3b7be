//! Writing data: aligned columns, JSON, durations, and a broken
//! pipe that is not an error (`cargo migrate list | head -1`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use anyhow::Result;
use migrate_build::Problem;
use serde::Serialize;

use crate::messages::{Label, Problems};

/// Whether `e` is a write to a closed pipe: the reader has all it wants.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Prints a table on stdout: `header`, then `rows`, aligned by
/// [`columns`]; nothing at all when there are no rows.
///
/// # Errors
///
/// When stdout cannot be written.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Result<()> {
    let mut table = vec![header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>()];
    table.extend(rows);
    if table.len() == 1 {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{}", columns(&table))?;
    out.flush()?;
    Ok(())
}

/// Rows aligned in columns two spaces apart; the last column is not padded.
pub fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..count)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Writes `value` to stdout as JSON on one line: the `--format json` output.
///
/// # Errors
///
/// When stdout cannot be written (a closed pipe is reported as such, and
/// is not an error for `main`).
pub fn json(value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string(value)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// A failed command in `--format json`: `{"error":{"message":…,"problems":[…]}}`.
#[derive(Debug, Serialize)]
pub struct Failure {
    error: FailureBody,
}

#[derive(Debug, Serialize)]
struct FailureBody {
    /// The `error:` line's text.
    message: String,
    /// The problems of the migrations directory (or config), when that is what failed.
    problems: Vec<ProblemRow>,
}

/// One problem of a migrations directory.
#[derive(Debug, Serialize)]
pub struct ProblemRow {
    severity: Label,
    /// The file, relative to the package when inside it.
    file: String,
    /// 1-based, or `null` when the problem is about the whole file.
    line: Option<usize>,
    message: String,
    /// What to do about it, or `null`.
    hint: Option<String>,
}

impl Failure {
    /// The JSON of the error that ends the command.
    pub fn of(e: &anyhow::Error) -> Self {
        let problems = e
            .downcast_ref::<Problems>()
            .map(|p| p.problems.iter().map(ProblemRow::of).collect())
            .unwrap_or_default();
        Self {
            error: FailureBody {
                message: crate::messages::one_line(e),
                problems,
            },
        }
    }
}

impl ProblemRow {
    /// The JSON of a problem.
    pub fn of(p: &Problem) -> Self {
        Self {
            severity: Label::of(p.severity),
            file: p.file.display().to_string(),
            line: (p.line > 0).then_some(p.line),
            message: p.message.clone(),
            hint: p.hint.clone(),
        }
    }
}

/// `0.4 ms`, `3 ms`, or `1.2 s` from a second on.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 10 {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

pub use crate::messages::count;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let rows = vec![
            vec!["VERSION".to_owned(), "NAME".to_owned(), "X".to_owned()],
            vec!["0001".to_owned(), "a_long_name".to_owned(), String::new()],
        ];
        assert_eq!(columns(&rows), "VERSION  NAME         X\n0001     a_long_name\n");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_micros(420)), "0.4 ms");
        assert_eq!(duration(Duration::from_millis(3)), "3.0 ms");
        assert_eq!(duration(Duration::from_millis(42)), "42 ms");
        assert_eq!(duration(Duration::from_millis(1234)), "1.2 s");
    }
}
