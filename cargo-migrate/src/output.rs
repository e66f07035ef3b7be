//! Writing data: aligned columns, JSON strings, durations, and a broken
//! pipe that is not an error (`cargo migrate list | head -1`).

use std::fmt::Write as _;
use std::time::Duration;

/// Whether `e` is a write to a closed pipe: the reader has all it wants.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
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

/// `s` as a JSON string literal.
pub fn json(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` as a JSON string, or `null`.
pub fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_owned(), json)
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
    fn json_strings() {
        assert_eq!(json("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
        assert_eq!(json_opt(None), "null");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_micros(420)), "0.4 ms");
        assert_eq!(duration(Duration::from_millis(3)), "3.0 ms");
        assert_eq!(duration(Duration::from_millis(42)), "42 ms");
        assert_eq!(duration(Duration::from_millis(1234)), "1.2 s");
    }
}
