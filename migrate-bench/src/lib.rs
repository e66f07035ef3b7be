//! Benchmark support: generated migration sets, timing helpers, the
//! build-time workload and (with the `peers` feature) the drivers of every
//! contender: cargo-migrate, plain rusqlite (the floor), refinery,
//! rusqlite_migration and sqlx.
//!
//! The harness is `src/bin/peers.rs`; `BENCHMARKS.md` at the root of the
//! repository says how to run it and what it measured.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use migrate_runtime::rusqlite::Connection;
use migrate_runtime::{Migration, Script};

#[cfg(feature = "peers")]
pub mod cli;
#[cfg(feature = "peers")]
pub mod peers;
#[cfg(feature = "pg-peers")]
pub mod pg;
#[cfg(feature = "peers")]
pub mod testdb;

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

/// The shape of a generated migration set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// [`generate`]: one new table per migration, and a column and an index
    /// every third. Its schema grows with N (10,000 tables at N = 10,000).
    Tables,
    /// [`generate_app`]: what an application's history looks like: a pool
    /// of tables made first, then columns, indexes, views, triggers, seed
    /// rows, table rebuilds and now and then a new table.
    App,
}

impl Shape {
    /// Both shapes, as `--shape` names them.
    pub const ALL: [Self; 2] = [Self::Tables, Self::App];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tables => "tables",
            Self::App => "app",
        }
    }

    /// `n` migrations of this shape.
    pub fn generate(self, n: usize) -> Vec<Generated> {
        match self {
            Self::Tables => generate(n),
            Self::App => generate_app(n),
        }
    }
}

/// How many tables [`generate_app`] makes first, one per migration.
pub const APP_POOL: usize = 200;

/// What [`generate_app`] remembers of one table to write the next
/// migration's up and down.
#[derive(Clone, Default)]
struct AppTable {
    /// The columns added with `ALTER TABLE … ADD COLUMN`, in order.
    extra: Vec<String>,
    /// The indexes on the table: (name, column).
    indexes: Vec<(String, String)>,
    /// Whether `name` has `DEFAULT ''` (a rebuild toggles it).
    name_default: bool,
    /// Seed migrations that inserted rows into it, for later updates.
    seeds: Vec<usize>,
}

impl AppTable {
    /// The table's `CREATE TABLE` statement under the name `as_name`.
    /// Rebuilt tables ([`rebuilt`]) are always written with a quoted name,
    /// which is what `ALTER TABLE … RENAME TO` leaves in `sqlite_schema`, so
    /// a rebuild's down gives back the very text its up started from.
    fn create(&self, k: usize, as_name: &str) -> String {
        let mut sql = format!("CREATE TABLE {as_name} (id INTEGER PRIMARY KEY, name TEXT NOT NULL");
        if self.name_default {
            sql.push_str(" DEFAULT ''");
        }
        sql.push_str(", created_at TEXT");
        if k % 10 == 3 {
            let _ = write!(sql, ", parent_id INTEGER REFERENCES t{} (id)", k - 1);
        }
        for c in &self.extra {
            let _ = write!(sql, ", {c} TEXT");
        }
        sql.push(')');
        sql
    }

    /// The SQLite table-rebuild procedure (create the new table, copy the
    /// rows, drop, rename, index again), into the definition of `self`.
    fn rebuild(&self, k: usize) -> String {
        let mut columns = String::from("id, name, created_at");
        for c in &self.extra {
            let _ = write!(columns, ", {c}");
        }
        let mut sql = format!(
            "{};\nINSERT INTO t{k}_new ({columns}) SELECT {columns} FROM t{k};\nDROP TABLE t{k};\nALTER TABLE t{k}_new RENAME TO \"t{k}\";\n",
            self.create(k, &format!("t{k}_new"))
        );
        for (name, column) in &self.indexes {
            let _ = writeln!(sql, "CREATE INDEX {name} ON t{k} ({column});");
        }
        sql
    }
}

/// Whether table `k` of [`generate_app`] is one that rebuilds pick (no
/// view, trigger or foreign key names it, so it can be dropped and renamed).
fn rebuilt(k: usize) -> bool {
    k % 10 == 7
}

/// A deterministic spread of `i` over `0..m` (Knuth's multiplicative hash).
fn spread(i: usize, m: usize) -> usize {
    (i.wrapping_mul(2_654_435_761) >> 5) % m.max(1)
}

/// `n` migrations shaped like an application's history rather than a
/// table each.
///
/// The first [`APP_POOL`] (200) create one table each (`t1` … `t200`; every
/// tenth from `t3` on has a foreign key to the table before it). After
/// that, migration `i` does, by `i % 20`: add a column to a table (0–4,
/// 17); index one of its columns (5, 6; once 50 are there, 6 drops the
/// oldest instead); create a view (7) or a trigger (8), dropping the oldest
/// once 30 are there; rebuild a table with SQLite's twelve-step procedure
/// (9: its `name` column gains or loses a default); insert three seed rows
/// (10–14); update seed rows (15, 16); drop the newest added column of a
/// table when no index uses it (18, 19, else add one); and one in a
/// hundred creates a new table. The schema stays about the size a real
/// app's has (at N = 10,000: 298 tables, about 2,900 columns added and up
/// to 980 dropped, at most 50 indexes, 30 views and 30 triggers). Every migration has a down that
/// undoes its up exactly. `t1` never gets rows (the start-up workload's
/// query counts them).
pub fn generate_app(n: usize) -> Vec<Generated> {
    let mut tables: Vec<AppTable> = Vec::new();
    let mut indexes: std::collections::VecDeque<(usize, String, String)> = std::collections::VecDeque::new();
    let mut views: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut triggers: std::collections::VecDeque<(String, String)> = std::collections::VecDeque::new();
    let mut out = Vec::with_capacity(n);
    for i in 1..=n {
        let (up, down) = app_step(i, &mut tables, &mut indexes, &mut views, &mut triggers);
        out.push(Generated {
            version: u64::try_from(i).unwrap_or(u64::MAX),
            name: format!("step_{i}"),
            up,
            down,
        });
    }
    out
}

/// A table of the pool (1-based) with `k % 10 == residue`, spread by `i`.
fn pick_residue(i: usize, count: usize, residue: usize) -> usize {
    let groups = count / 10;
    10 * spread(i, groups) + residue
}

/// One migration of [`generate_app`]: its up and down, and the model
/// updated to the schema after its up.
fn app_step(
    i: usize,
    tables: &mut Vec<AppTable>,
    indexes: &mut std::collections::VecDeque<(usize, String, String)>,
    views: &mut std::collections::VecDeque<String>,
    triggers: &mut std::collections::VecDeque<(String, String)>,
) -> (String, String) {
    let new_table = |tables: &mut Vec<AppTable>| {
        let k = tables.len() + 1;
        let table = AppTable::default();
        let name = if rebuilt(k) {
            format!("\"t{k}\"")
        } else {
            format!("t{k}")
        };
        let up = format!("{};\n", table.create(k, &name));
        tables.push(table);
        (up, format!("DROP TABLE t{k};\n"))
    };
    if i <= APP_POOL || i % 100 == 50 {
        return new_table(tables);
    }
    let count = tables.len();
    // Any table but t1, which stays empty.
    let any = 2 + spread(i, count - 1);
    let add_column = |tables: &mut Vec<AppTable>, k: usize| {
        let column = format!("c{i}");
        tables[k - 1].extra.push(column.clone());
        (
            format!("ALTER TABLE t{k} ADD COLUMN {column} TEXT;\n"),
            format!("ALTER TABLE t{k} DROP COLUMN {column};\n"),
        )
    };
    match i % 20 {
        0..=4 | 17 => add_column(tables, any),
        5 | 6 if i % 20 == 5 || indexes.len() < 50 => {
            let column = tables[any - 1]
                .extra
                .last()
                .cloned()
                .unwrap_or_else(|| "name".to_owned());
            let name = format!("ix{i}");
            tables[any - 1].indexes.push((name.clone(), column.clone()));
            indexes.push_back((any, name.clone(), column.clone()));
            (
                format!("CREATE INDEX {name} ON t{any} ({column});\n"),
                format!("DROP INDEX {name};\n"),
            )
        }
        6 => {
            let (k, name, column) = indexes.pop_front().expect("50 indexes");
            tables[k - 1].indexes.retain(|(n, _)| *n != name);
            (
                format!("DROP INDEX {name};\n"),
                format!("CREATE INDEX {name} ON t{k} ({column});\n"),
            )
        }
        7 => {
            let k = pick_residue(i, count, 4);
            let create =
                format!("CREATE VIEW v{i} AS SELECT id, name, created_at FROM t{k} WHERE created_at IS NOT NULL");
            if views.len() >= 30 {
                let old = views.pop_front().expect("30 views");
                let name = old.split_whitespace().nth(2).unwrap_or_default().to_owned();
                views.push_back(create.clone());
                (
                    format!("DROP VIEW {name};\n{create};\n"),
                    format!("DROP VIEW v{i};\n{old};\n"),
                )
            } else {
                views.push_back(create.clone());
                (format!("{create};\n"), format!("DROP VIEW v{i};\n"))
            }
        }
        8 => {
            let k = pick_residue(i, count, 5);
            let name = format!("tr{i}");
            let create = format!(
                "CREATE TRIGGER {name} AFTER UPDATE OF name ON t{k} BEGIN UPDATE t{k} SET created_at = '2026-12-02' WHERE id = NEW.id; END"
            );
            if triggers.len() >= 30 {
                let (old_name, old) = triggers.pop_front().expect("30 triggers");
                triggers.push_back((name.clone(), create.clone()));
                (
                    format!("DROP TRIGGER {old_name};\n{create};\n"),
                    format!("DROP TRIGGER {name};\n{old};\n"),
                )
            } else {
                triggers.push_back((name.clone(), create.clone()));
                (format!("{create};\n"), format!("DROP TRIGGER {name};\n"))
            }
        }
        9 => {
            let k = pick_residue(i, count, 7);
            let before = tables[k - 1].rebuild(k);
            tables[k - 1].name_default = !tables[k - 1].name_default;
            (tables[k - 1].rebuild(k), before)
        }
        10..=14 => {
            tables[any - 1].seeds.push(i);
            let mut up = format!("INSERT INTO t{any} (name, created_at) VALUES ");
            for r in 1..=3 {
                let _ = write!(up, "{}('seed-{i}-{r}', '2026-01-01')", if r > 1 { ", " } else { "" });
            }
            up.push_str(";\n");
            (up, format!("DELETE FROM t{any} WHERE name LIKE 'seed-{i}-%';\n"))
        }
        15 | 16 => match tables[any - 1].seeds.last() {
            Some(&s) => (
                format!("UPDATE t{any} SET created_at = '2026-06-01' WHERE name = 'seed-{s}-1';\n"),
                format!("UPDATE t{any} SET created_at = '2026-01-01' WHERE name = 'seed-{s}-1';\n"),
            ),
            None => add_column(tables, any),
        },
        _ => {
            let table = &mut tables[any - 1];
            match table.extra.last().cloned() {
                Some(column) if !table.indexes.iter().any(|(_, c)| *c == column) => {
                    table.extra.pop();
                    (
                        format!("ALTER TABLE t{any} DROP COLUMN {column};\n"),
                        format!("ALTER TABLE t{any} ADD COLUMN {column} TEXT;\n"),
                    )
                }
                _ => add_column(tables, any),
            }
        }
    }
}

/// The file name stem cargo-migrate (and sqlx) use for `m`: `0001_step_1`.
pub fn stem(m: &Generated) -> String {
    format!("{:04}_{}", m.version, m.name)
}

/// Writes a generated set as `migrations/` files under `package`
/// (`0001_step_1.up.sql` and `0001_step_1.down.sql`, …).
pub fn write_dir(package: &Path, set: &[Generated]) {
    let dir = package.join("migrations");
    std::fs::create_dir_all(&dir).expect("create migrations/");
    for m in set {
        std::fs::write(dir.join(format!("{}.up.sql", stem(m))), &m.up).expect("write up");
        std::fs::write(dir.join(format!("{}.down.sql", stem(m))), &m.down).expect("write down");
    }
}

/// The set as cargo-migrate's runtime sees it: what the generated module's
/// `MIGRATIONS` holds (checksums are computed here once, as the generated
/// code has them as constants).
pub fn ours(set: &[Generated]) -> Vec<Migration> {
    set.iter()
        .map(|m| {
            let stem = stem(m);
            Migration::new(
                m.version,
                m.name.clone(),
                Script::new(m.up.clone(), format!("migrations/{stem}.up.sql")),
            )
            .with_down(Script::new(m.down.clone(), format!("migrations/{stem}.down.sql")))
        })
        .collect()
}

/// The history digest the generated module's `migrator()` passes to
/// `Migrator::__code_digest` (computed by the build, so not at start-up):
/// the start-up contenders use it as an app's generated code does.
pub fn code_digest(ours: &[Migration]) -> u128 {
    u128::from_be_bytes(migrate_runtime::digest_of(
        ours.iter().map(|m| (m.version(), m.name(), m.checksum())),
    ))
}

/// [`ours`] with each migration's schema fingerprint, computed by the
/// build's replay ([`migrate_runtime::Migrator::check`]) as the generated
/// module records them: with these, `apply` runs the start-up drift check.
///
/// # Panics
///
/// When the replay fails (the generated migrations are valid).
pub fn ours_with_fingerprints(set: &[Generated]) -> Vec<Migration> {
    let plain = ours(set);
    let validated = migrate_runtime::Migrator::new(&plain)
        .check()
        .expect("the generated migrations replay");
    plain
        .into_iter()
        .zip(validated.fingerprints)
        .map(|(m, (version, fingerprint))| {
            assert_eq!(m.version(), version);
            // Generated code has them as `&'static str` literals.
            m.with_schema_fingerprint(String::leak(fingerprint))
        })
        .collect()
}

/// The floor's tracking table: what plain rusqlite records per migration.
pub const FLOOR_TABLE: &str = "CREATE TABLE floor_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)";

/// The floor of a fresh apply: plain rusqlite running the same up SQL with
/// no checks, and the least bookkeeping that still records what was applied.
///
/// `BEGIN`, then (first transaction only) `CREATE TABLE floor_migrations
/// (version INTEGER PRIMARY KEY, name TEXT NOT NULL)`, then per migration its
/// up SQL through one `execute_batch` and `INSERT INTO floor_migrations
/// (version, name) VALUES (?1, ?2)` through a cached statement; `COMMIT`
/// after each migration (`one_transaction == false`) or once at the end.
///
/// # Panics
///
/// When SQLite fails (the generated SQL is valid).
pub fn floor_apply(conn: &Connection, set: &[Generated], one_transaction: bool) {
    conn.execute_batch("BEGIN").expect("BEGIN");
    conn.execute_batch(FLOOR_TABLE).expect("create the floor's table");
    for (i, m) in set.iter().enumerate() {
        if !one_transaction && i > 0 {
            conn.execute_batch("BEGIN").expect("BEGIN");
        }
        conn.execute_batch(&m.up).expect("up");
        conn.prepare_cached("INSERT INTO floor_migrations (version, name) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute((i64::try_from(m.version).unwrap_or(i64::MAX), &m.name)))
            .expect("record");
        if !one_transaction {
            conn.execute_batch("COMMIT").expect("COMMIT");
        }
    }
    if one_transaction {
        conn.execute_batch("COMMIT").expect("COMMIT");
    }
}

/// The floor of the build-time check: SQLite alone runs every up once, in
/// memory.
///
/// # Panics
///
/// When SQLite fails (the generated SQL is valid).
pub fn floor_build(set: &[Generated]) {
    let conn = Connection::open_in_memory().expect("open");
    for m in set {
        conn.execute_batch(&m.up).expect("up");
    }
}

/// The app's first query in the start-up workload.
pub const APP_QUERY: &str = "SELECT count(*) FROM t1";

/// Runs [`APP_QUERY`] on `conn`.
///
/// # Panics
///
/// When the table is missing.
pub fn app_query(conn: &Connection) -> i64 {
    conn.query_row(APP_QUERY, [], |r| r.get(0)).expect("the app's query")
}

/// Times `f` once, on the [`Clock`] chosen with [`use_cpu_clock`].
pub fn time(f: impl FnOnce()) -> Duration {
    let start = Clock::start();
    f();
    start.elapsed()
}

/// Whether [`Clock`] measures CPU time instead of wall time.
static CPU_CLOCK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every [`Clock`] (and [`time`]) measure the CPU time of the
/// calling thread plus that of the child processes it waited for, instead
/// of wall time. On a machine shared with other work a process waits for a
/// core; CPU time leaves the wait out. Linux only: it reads
/// `/proc/thread-self/schedstat` (nanoseconds on a CPU) and the `cutime`
/// and `cstime` fields of `/proc/self/stat` (clock ticks, 10 ms here).
/// Meant for single-threaded contenders (sqlx's worker thread is not
/// counted) and runs of 100 ms and more: the kernel brings a running
/// thread's figure up to date at scheduler ticks and switches only.
pub fn use_cpu_clock() {
    CPU_CLOCK.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// A stopwatch on wall time or, after [`use_cpu_clock`], on CPU time.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// Wall time since this instant.
    Wall(Instant),
    /// CPU time since this much had been used.
    Cpu(Duration),
}

impl Clock {
    /// Starts the stopwatch.
    pub fn start() -> Self {
        if CPU_CLOCK.load(std::sync::atomic::Ordering::Relaxed) {
            Self::Cpu(cpu_used())
        } else {
            Self::Wall(Instant::now())
        }
    }

    /// The time since [`start`](Self::start).
    pub fn elapsed(self) -> Duration {
        match self {
            Self::Wall(start) => start.elapsed(),
            Self::Cpu(start) => cpu_used().saturating_sub(start),
        }
    }
}

/// This thread's CPU time, plus the CPU time of every child process
/// reaped so far.
///
/// # Panics
///
/// When `/proc` cannot be read (not Linux).
fn cpu_used() -> Duration {
    let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("read /proc/thread-self/schedstat");
    let own: u64 = schedstat
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("schedstat's first field");
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The fields after the command name, which is in parentheses:
    // state is field 3, cutime and cstime fields 16 and 17.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(13)
        .take(2)
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    // USER_HZ is 100 on Linux.
    Duration::from_nanos(own) + Duration::from_millis(ticks * 10)
}

/// The median of some durations.
pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort_unstable();
    xs.get(xs.len() / 2).copied().unwrap_or_default()
}

/// A fresh, unused database path in `dir` for each call (`name-1.db`,
/// `name-2.db`, …), and removal of what SQLite left next to it.
pub struct Paths {
    dir: PathBuf,
    name: String,
    next: u64,
}

impl Paths {
    /// Paths `dir/name-K.db`.
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            name: name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
            next: 0,
        }
    }

    /// The next fresh path; the file does not exist.
    pub fn fresh(&mut self) -> PathBuf {
        self.next += 1;
        let path = self.dir.join(format!("{}-{}.db", self.name, self.next));
        remove_db(&path);
        path
    }
}

/// Removes a database file and its journal, WAL and shared-memory files.
pub fn remove_db(path: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// The build-time workload's contenders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildStep {
    /// The floor: SQLite alone runs every up once, in memory.
    Floor,
    /// `migrate_build::Builder::build` with no previous output and no
    /// replay cache: scan, replay, down round trips, saving the replay
    /// cache, code generation, write.
    Build,
    /// The same with the output already there and unchanged (not rewritten)
    /// and the replay cache of this set: what a build script re-run by
    /// cargo costs when nothing changed (a file touched).
    Unchanged,
    /// Part of `Build`: reading and checking the files only.
    Scan,
    /// Part of `Build`: scan, replay and round trips, without code generation.
    Check,
    /// `Build` with the replay cache of the first N − 1 migrations in the
    /// output directory (as the previous build left it): one migration
    /// added.
    AddOne,
    /// `Build` with the replay cache of the whole set, after migration
    /// N / 2 + 1 (the one at index N / 2) was edited: the check resumes from the last kept prefix
    /// before it.
    EditMiddle,
    /// `Check` with an empty replay cache directory: the check plus saving
    /// the verified prefixes (what the cache costs a first build).
    CheckSaving,
}

impl BuildStep {
    /// Every step, in the order the harness alternates them.
    pub const ALL: [Self; 8] = [
        Self::Floor,
        Self::Build,
        Self::Unchanged,
        Self::Scan,
        Self::Check,
        Self::AddOne,
        Self::EditMiddle,
        Self::CheckSaving,
    ];

    /// The name used on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Self::Floor => "floor-build",
            Self::Build => "ours-build",
            Self::Unchanged => "ours-build-unchanged",
            Self::Scan => "ours-scan-only",
            Self::Check => "ours-check-only",
            Self::AddOne => "ours-build-add-one",
            Self::EditMiddle => "ours-build-edit-middle",
            Self::CheckSaving => "ours-check-saving-cache",
        }
    }
}

/// A package directory with the generated migrations, and an output
/// directory, for the build-time workload.
pub struct BuildFixture {
    set: Vec<Generated>,
    package: tempfile::TempDir,
    out: tempfile::TempDir,
    config: migrate_build::Config,
    /// The replay caches that `AddOne` and `EditMiddle` start from (made
    /// on first use), and the package with migration N / 2 edited.
    primed: Primed,
}

/// What the incremental steps start from, each made on first use (a
/// full build each, which matters at N = 10,000).
#[derive(Default)]
struct Primed {
    without_last: std::cell::OnceCell<tempfile::TempDir>,
    whole: std::cell::OnceCell<tempfile::TempDir>,
    edited: std::cell::OnceCell<tempfile::TempDir>,
}

/// Replaces `to` with a copy of the files of `from`.
fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("create the cache directory");
    for entry in std::fs::read_dir(from).expect("read the cache").flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy a cache file");
    }
}

impl BuildFixture {
    /// Writes `set` as files in a temporary package.
    ///
    /// # Panics
    ///
    /// When the temporary directories cannot be made.
    pub fn new(set: Vec<Generated>) -> Self {
        let package = tempfile::tempdir().expect("tempdir");
        write_dir(package.path(), &set);
        Self {
            set,
            package,
            out: tempfile::tempdir().expect("tempdir"),
            config: migrate_build::Config::default(),
            primed: Primed::default(),
        }
    }

    /// The replay cache a build of `set` leaves.
    fn cache_of(set: &[Generated]) -> tempfile::TempDir {
        let package = tempfile::tempdir().expect("tempdir");
        write_dir(package.path(), set);
        let out = tempfile::tempdir().expect("tempdir");
        migrate_build::Builder::new()
            .package_dir(package.path())
            .out_dir(out.path())
            .directives(std::io::sink())
            .build()
            .expect("build");
        let cache = tempfile::tempdir().expect("tempdir");
        copy_dir(&out.path().join(migrate_build::CACHE_DIR), cache.path());
        cache
    }

    /// The cache of the first N − 1 migrations.
    fn without_last(&self) -> &Path {
        self.primed
            .without_last
            .get_or_init(|| Self::cache_of(&self.set[..self.set.len() - 1]))
            .path()
    }

    /// The cache of the whole set.
    fn whole(&self) -> &Path {
        self.primed.whole.get_or_init(|| Self::cache_of(&self.set)).path()
    }

    /// The package with migration N / 2 + 1 edited.
    fn edited(&self) -> &Path {
        self.primed
            .edited
            .get_or_init(|| {
                let edited = tempfile::tempdir().expect("tempdir");
                write_dir(edited.path(), &self.set);
                let middle = &self.set[self.set.len() / 2];
                let path = edited
                    .path()
                    .join("migrations")
                    .join(format!("{}.up.sql", stem(middle)));
                std::fs::write(&path, format!("{}-- edited\n", middle.up)).expect("edit");
                edited
            })
            .path()
    }

    /// The timed build of the build steps, on its own for callgrind's
    /// `--toggle-collect='*BuildFixture*timed_build*'`.
    #[inline(never)]
    fn timed_build(&self, package: &Path) -> migrate_build::Built {
        migrate_build::Builder::new()
            .package_dir(package)
            .out_dir(self.out.path())
            .directives(std::io::sink())
            .build()
            .expect("build")
    }

    /// Runs `step` once and returns its time (setup excluded).
    ///
    /// # Panics
    ///
    /// When the build fails (the generated migrations are valid).
    pub fn run(&self, step: BuildStep) -> Duration {
        let builder = || {
            migrate_build::Builder::new()
                .package_dir(self.package.path())
                .out_dir(self.out.path())
                .directives(std::io::sink())
        };
        let cache = self.out.path().join(migrate_build::CACHE_DIR);
        match step {
            BuildStep::AddOne | BuildStep::EditMiddle => {
                let (from, package) = if step == BuildStep::AddOne {
                    (self.without_last(), self.package.path())
                } else {
                    (self.whole(), self.edited())
                };
                copy_dir(from, &cache);
                let _ = std::fs::remove_file(self.out.path().join(migrate_build::OUTPUT_FILE));
                time(|| {
                    let built = self.timed_build(package);
                    assert!(built.cached > 0 && built.cached < self.set.len());
                })
            }
            BuildStep::CheckSaving => {
                let _ = std::fs::remove_dir_all(&cache);
                time(|| {
                    let checked =
                        migrate_build::check_incremental(self.package.path(), &self.config, None, Some(&cache))
                            .expect("check");
                    assert_eq!(checked.cached, 0);
                })
            }
            BuildStep::Floor => time(|| floor_build(&self.set)),
            BuildStep::Build => {
                let _ = std::fs::remove_file(self.out.path().join(migrate_build::OUTPUT_FILE));
                let _ = std::fs::remove_dir_all(&cache);
                time(|| {
                    let built = self.timed_build(self.package.path());
                    assert!(built.changed);
                })
            }
            BuildStep::Unchanged => {
                // The output and the cache of this very set are there.
                builder().build().expect("build");
                time(|| {
                    let built = self.timed_build(self.package.path());
                    assert!(!built.changed);
                    assert_eq!(built.cached, self.set.len());
                })
            }
            BuildStep::Scan => time(|| {
                migrate_build::load(self.package.path(), &self.config).expect("scan");
            }),
            BuildStep::Check => time(|| {
                migrate_build::check(self.package.path(), &self.config).expect("check");
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The build's check replays the `app` set and round-trips every down
    /// (it fails on a down that does not give back the schema its up
    /// started from). At 900 migrations every kind of step has run, the
    /// dropping of the oldest index, view and trigger included.
    #[test]
    fn app_shape_replays_and_its_downs_undo_their_ups() {
        let set = generate_app(900);
        let sql = |pattern: &str| set.iter().filter(|m| m.up.contains(pattern)).count();
        for pattern in [
            "ADD COLUMN",
            "DROP COLUMN",
            "CREATE INDEX",
            "DROP INDEX",
            "DROP VIEW",
            "DROP TRIGGER",
            "RENAME TO",
            "INSERT INTO",
            "UPDATE",
            "REFERENCES",
        ] {
            assert!(sql(pattern) > 0, "no up with {pattern}");
        }
        let package = tempfile::tempdir().expect("tempdir");
        write_dir(package.path(), &set);
        let checked = migrate_build::check(package.path(), &migrate_build::Config::default())
            .unwrap_or_else(|e| panic!("{:?}", e.problems()));
        assert_eq!(checked.migrations.len(), 900);
        assert!(checked.warnings.is_empty(), "{:?}", checked.warnings);
        // A prefix of a longer set is the shorter set (add-one relies on it).
        let shorter = generate_app(500);
        assert!(shorter.iter().zip(&set).all(|(a, b)| a.up == b.up && a.down == b.down));
    }
}
