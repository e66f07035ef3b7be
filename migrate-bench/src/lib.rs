//! Benchmark support: generated migration sets and timing helpers.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// One generated migration: version, name, up SQL, down SQL.
pub struct Generated {
    /// The version (1-based).
    pub version: u64,
    /// The name.
    pub name: String,
    /// The up SQL.
    pub up: String,
    /// The down SQL.
    pub down: String,
}

/// `n` migrations: each creates a table; every third also adds a column to
/// the previous table and indexes it.
pub fn generate(n: usize) -> Vec<Generated> {
    (1..=n)
        .map(|i| {
            let mut up = format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at TEXT);\n");
            let mut down = String::new();
            if i % 3 == 0 && i > 1 {
                let p = i - 1;
                let _ = writeln!(up, "ALTER TABLE t{p} ADD COLUMN extra{i} TEXT;");
                let _ = writeln!(up, "CREATE INDEX t{p}_extra{i} ON t{p} (extra{i});");
                let _ = writeln!(down, "DROP INDEX t{p}_extra{i};");
                let _ = writeln!(down, "ALTER TABLE t{p} DROP COLUMN extra{i};");
            }
            let _ = writeln!(down, "DROP TABLE t{i};");
            Generated {
                version: u64::try_from(i).unwrap_or(u64::MAX),
                name: format!("step_{i}"),
                up,
                down,
            }
        })
        .collect()
}

/// Writes a generated set as `migrations/` files under `package`.
pub fn write_dir(package: &Path, set: &[Generated]) {
    let dir = package.join("migrations");
    std::fs::create_dir_all(&dir).expect("create migrations/");
    for m in set {
        std::fs::write(dir.join(format!("{:04}_{}.up.sql", m.version, m.name)), &m.up).expect("write up");
        std::fs::write(dir.join(format!("{:04}_{}.down.sql", m.version, m.name)), &m.down).expect("write down");
    }
}

/// Times `f` once.
pub fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The median of some durations.
pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort_unstable();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}
