//! Can this lose data? Real processes killed with SIGKILL mid-migration,
//! faults (disk full, read-only files and directories, long-held locks,
//! foreign tracking tables, files that are not SQLite), and the app and the
//! CLI starting at once. See RELIABILITY.md for how to run the long versions.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use migrate_runtime::rusqlite::{Connection, OpenFlags};

fn worker() -> &'static str {
    env!("CARGO_BIN_EXE_migrate-worker")
}

const ROWS: i64 = 200_000;

/// Migrations that take a while: a big insert, an index, a table rebuild,
/// a derived table, a full-table update.
fn write_crash_set(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let files = [
        (
            "0001_big_table.sql",
            format!(
                "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n\
                 WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {ROWS})\n\
                 INSERT INTO big (id, v) SELECT x, printf('row-%08d', x) FROM c;\n"
            ),
        ),
        ("0002_index.sql", "CREATE INDEX big_v ON big (v);\n".to_owned()),
        (
            "0003_rebuild.sql",
            "CREATE TABLE big_new (id INTEGER PRIMARY KEY, v TEXT NOT NULL, marker INTEGER NOT NULL DEFAULT 3);\n\
             INSERT INTO big_new (id, v) SELECT id, v FROM big;\n\
             DROP TABLE big;\n\
             ALTER TABLE big_new RENAME TO big;\n\
             CREATE INDEX big_v ON big (v);\n"
                .to_owned(),
        ),
        (
            "0004_second.sql",
            "CREATE TABLE second AS SELECT id, v FROM big WHERE id % 2 = 0;\n".to_owned(),
        ),
        ("0005_update.sql", "UPDATE big SET v = v || '!';\n".to_owned()),
    ];
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
}

/// Checks the database after a kill: intact, and every migration either
/// fully applied and recorded, or neither. Returns how many are applied.
fn check_consistent(db: &Path) -> Result<usize, String> {
    let conn = Connection::open(db).map_err(|e| format!("open: {e}"))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("integrity_check: {e}"))?;
    if integrity != "ok" {
        return Err(format!("integrity_check: {integrity}"));
    }
    let has_table = |name: &str| -> bool {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type IN ('table', 'index') AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .unwrap_or(0)
            == 1
    };
    let versions: Vec<i64> = if has_table("_migrations") {
        let mut s = conn
            .prepare("SELECT version FROM _migrations ORDER BY version")
            .unwrap();
        s.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    } else {
        Vec::new()
    };
    let applied = versions.len();
    let expected: Vec<i64> = (1..=i64::try_from(applied).unwrap()).collect();
    if versions != expected {
        return Err(format!("recorded versions are not a prefix: {versions:?}"));
    }
    let count = |sql: &str| {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map_err(|e| format!("{sql}: {e}"))
    };
    let facts = [
        has_table("big") && count("SELECT count(*) FROM big")? == ROWS,
        has_table("big_v"),
        has_table("big") && count("SELECT count(*) FROM pragma_table_info('big') WHERE name = 'marker'")? == 1,
        has_table("second") && count("SELECT count(*) FROM second")? == ROWS / 2,
        has_table("big") && count("SELECT count(*) FROM big WHERE v LIKE '%!'")? == ROWS,
    ];
    for (i, fact) in facts.iter().enumerate() {
        let recorded = i < applied;
        if *fact != recorded {
            return Err(format!(
                "migration {} is {} but its effect is {}",
                i + 1,
                if recorded { "recorded" } else { "not recorded" },
                if *fact { "present" } else { "absent" }
            ));
        }
    }
    // Partial effects of the first unapplied migration must not be visible.
    if applied == 0 && has_table("big") {
        return Err("table big exists but migration 1 is not recorded".into());
    }
    Ok(applied)
}

/// A small deterministic generator, seeded from the clock and printed, so a
/// failing run can be repeated with CRASH_SEED.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| u64::try_from(d.as_nanos() % u128::from(u64::MAX)).unwrap_or(1))
            });
        eprintln!("crash test seed: CRASH_SEED={seed}");
        Self(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

fn reset(db: &Path) {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// Kills a migrating process `kills` times at random moments and checks the
/// database after each kill; returns (kills, runs completed, full applies).
fn crash_loop(kills: usize) -> (usize, usize, usize) {
    let dir = tests::scratch();
    let migrations = dir.path().join("migrations");
    write_crash_set(&migrations);
    let db = dir.path().join("crash.db");
    let mut rng = Rng::new();

    // How long one uninterrupted apply takes, to spread the kills over it.
    let start = Instant::now();
    let out = Command::new(worker()).arg(&migrations).arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let full = start.elapsed();
    assert_eq!(check_consistent(&db), Ok(5));
    reset(&db);

    let (mut done, mut completed, mut full_applies) = (0, 0, 0);
    let mut wal = false;
    // Most runs are killed (the delay is below one apply's length); a bound
    // keeps a machine where they keep finishing first from looping forever.
    let max_attempts = kills * 20 + 100;
    let mut attempts = 0;
    while done < kills {
        attempts += 1;
        assert!(
            attempts <= max_attempts,
            "only {done} of {kills} runs were killed in {max_attempts} attempts: the runs finish before the kill"
        );
        let mut cmd = Command::new(worker());
        cmd.arg(&migrations)
            .arg(&db)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if wal {
            cmd.arg("--wal");
        }
        let mut child = cmd.spawn().unwrap();
        let delay = Duration::from_micros(rng.below(u64::try_from(full.as_micros()).unwrap_or(1_000_000)));
        // Wait for the delay, or less if the run finishes first.
        let started = Instant::now();
        while started.elapsed() < delay && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2).min(delay));
        }
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap(); // SIGKILL
            done += 1;
            if done % 100 == 0 {
                eprintln!("crash test: {done} kills so far");
            }
        }
        let status = child.wait().unwrap();
        if !killed {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            assert!(status.success(), "a run that was not killed failed: {stderr}");
            completed += 1;
        }
        let applied = check_consistent(&db).unwrap_or_else(|e| panic!("after kill {done} ({delay:?} in): {e}"));
        if applied == 5 {
            full_applies += 1;
            reset(&db);
            wal = !wal;
        }
    }
    // The next run finishes the job.
    let out = Command::new(worker()).arg(&migrations).arg(&db).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(check_consistent(&db), Ok(5));
    (done, completed, full_applies)
}

#[test]
fn sigkill_at_random_moments_leaves_every_migration_all_or_nothing() {
    let kills = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let (done, completed, full) = crash_loop(kills);
    eprintln!("crash test: {done} kills, {completed} runs finished unkilled, {full} full applies, 0 inconsistencies");
    assert!(done >= 50);
}

#[test]
#[ignore = "long: 1,000 kills (about 10 minutes); run with --ignored"]
fn sigkill_one_thousand_times() {
    let (done, completed, full) = crash_loop(1000);
    eprintln!(
        "long crash test: {done} kills, {completed} runs finished unkilled, {full} full applies, 0 inconsistencies"
    );
}

// ---- faults: a clear error, and the database exactly as before ----

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn simple_set(dir: &Path) -> PathBuf {
    let m = dir.join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("0001_a.sql"),
        "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);\n",
    )
    .unwrap();
    std::fs::write(
        m.join("0002_fill.sql"),
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000)\n\
         INSERT INTO a (v) SELECT printf('%0100d', x) FROM c;\n",
    )
    .unwrap();
    m
}

fn run_worker(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(worker()).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn disk_full_is_a_clear_error_and_rolls_back() {
    let dir = tests::scratch();
    let m = simple_set(dir.path());
    let db = dir.path().join("full.db");
    // Apply the first migration, then cap the file so the second cannot fit.
    std::fs::remove_file(m.join("0002_fill.sql")).unwrap();
    let (ok, err) = run_worker(&[m.as_os_str(), db.as_os_str()]);
    assert!(ok, "{err}");
    simple_set(dir.path());
    let before = file_bytes(&db);
    let (ok, err) = run_worker(&[m.as_os_str(), db.as_os_str(), "--max-pages".as_ref(), "20".as_ref()]);
    assert!(!ok);
    assert!(
        err.contains("migrations/0002_fill.sql:1: up migration 2 `fill` failed: database or disk is full"),
        "{err}"
    );
    assert!(err.contains("free disk space"), "{err}");
    assert_eq!(file_bytes(&db), before, "the database is exactly as before");
}

#[test]
fn a_read_only_connection_is_a_clear_error() {
    let dir = tests::scratch();
    let db = dir.path().join("ro.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);")
        .unwrap();
    let before = file_bytes(&db);
    let mut conn = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let ms = [migrate_runtime::Migration::new(
        1,
        "a",
        migrate_runtime::Script::new("CREATE TABLE a (x);", "migrations/0001_a.sql"),
    )];
    let e = migrate_runtime::Migrator::new(&ms).apply(&mut conn).unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
    drop(conn);
    assert_eq!(file_bytes(&db), before);
}

/// The opt-out for machines where the tests run as root but cannot drop
/// privileges (no `setpriv`, or a sandbox that forbids `setuid`).
const NO_SETPRIV: &str = "MIGRATE_TEST_NO_SETPRIV";

/// A place the unprivileged user (uid 65534) can reach whatever the
/// checkout's location: a fresh 0755 directory under the system temp dir,
/// holding its own copy of the worker binary. The target directory will not
/// do: its parents may be private (`/root` is 0700, so is a `mktemp -d`).
/// Removed when dropped.
struct Reachable {
    dir: tempfile::TempDir,
    worker: PathBuf,
}

impl Reachable {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("cargo-migrate-unprivileged-")
            .tempdir()
            .expect("create a directory under the system temp dir");
        chmod(dir.path(), 0o755);
        // Every parent must let others through, or the worker cannot reach it.
        for parent in dir.path().ancestors().skip(1) {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(parent).map_or(0, |m| m.permissions().mode());
            assert!(
                mode & 0o001 != 0,
                "{} is not searchable by other users (mode {mode:o}): point TMPDIR at a directory \
                 they can reach, or set {NO_SETPRIV}=1 to skip the unprivileged checks",
                parent.display()
            );
        }
        let worker = dir.path().join("migrate-worker");
        std::fs::copy(self::worker(), &worker).expect("copy the worker binary");
        chmod(&worker, 0o755);
        Self { dir, worker }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the worker as an unprivileged user when the tests run as root
    /// (root ignores file permissions), so read-only files and directories
    /// are really read-only to it. `None` when the tests run as root, cannot
    /// drop privileges, and [`NO_SETPRIV`] says to skip; a failure otherwise.
    fn run(&self, args: &[&std::ffi::OsStr]) -> Option<(bool, String)> {
        let uid = Command::new("id").arg("-u").output().expect("run id -u");
        let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let opted_out = std::env::var_os(NO_SETPRIV).is_some_and(|v| !v.is_empty() && v != "0");
        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&self.worker);
            c
        } else {
            Command::new(&self.worker)
        };
        let cannot = |cause: String| {
            assert!(
                opted_out,
                "cannot drop privileges to check read-only files: {cause} (set {NO_SETPRIV}=1 to skip these checks)"
            );
            eprintln!("skipped ({NO_SETPRIV} is set): cannot drop privileges: {cause}");
            None
        };
        let out = match cmd.args(args).current_dir(self.path()).output() {
            Ok(out) => out,
            Err(e) if root => return cannot(format!("setpriv: {e}")),
            Err(e) => panic!("run the worker: {e}"),
        };
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if root && !out.status.success() && stderr.starts_with("setpriv") {
            return cannot(stderr.trim().to_owned());
        }
        Some((out.status.success(), stderr))
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn read_only_file_and_read_only_directory_are_clear_errors() {
    let dir = Reachable::new();
    let m = simple_set(dir.path());
    chmod(&m, 0o755);
    for f in std::fs::read_dir(&m).unwrap() {
        chmod(&f.unwrap().path(), 0o644);
    }
    // A read-only database file.
    let db = dir.path().join("ro.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);")
        .unwrap();
    chmod(&db, 0o444);
    let before = file_bytes(&db);
    let Some((ok, err)) = dir.run(&[m.as_os_str(), db.as_os_str()]) else {
        return;
    };
    assert!(!ok);
    assert!(err.contains("read-only") || err.contains("readonly"), "{err}");
    assert_eq!(file_bytes(&db), before);

    // A database in a read-only directory: SQLite cannot create its journal.
    let ro_dir = dir.path().join("ro-dir");
    std::fs::create_dir(&ro_dir).unwrap();
    let db2 = ro_dir.join("app.db");
    Connection::open(&db2)
        .unwrap()
        .execute_batch("CREATE TABLE keep (x); INSERT INTO keep VALUES (1);")
        .unwrap();
    chmod(&db2, 0o666);
    chmod(&ro_dir, 0o555);
    let before = file_bytes(&db2);
    let (ok, err) = dir
        .run(&[m.as_os_str(), db2.as_os_str()])
        .expect("dropped privileges the first time");
    chmod(&ro_dir, 0o755);
    assert!(!ok);
    assert!(
        err.contains("read-only") || err.contains("readonly") || err.contains("unable to open"),
        "{err}"
    );
    assert_eq!(file_bytes(&db2), before);
}

#[test]
fn a_lock_held_by_another_process_past_the_timeout_is_a_clear_error() {
    let dir = tests::scratch();
    let m = simple_set(dir.path());
    let db = dir.path().join("locked.db");
    let holder = Connection::open(&db).unwrap();
    holder
        .execute_batch("CREATE TABLE keep (x); BEGIN IMMEDIATE; INSERT INTO keep VALUES (1);")
        .unwrap();
    let start = Instant::now();
    let (ok, err) = run_worker(&[m.as_os_str(), db.as_os_str(), "--lock-timeout".as_ref(), "1".as_ref()]);
    let took = start.elapsed();
    assert!(!ok);
    assert!(err.contains("locked by another process"), "{err}");
    assert!(took >= Duration::from_millis(900), "waited the timeout: {took:?}");
    holder.execute_batch("ROLLBACK").unwrap();
    let tables: i64 = holder
        .query_row("SELECT count(*) FROM sqlite_schema WHERE name <> 'keep'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(tables, 0, "nothing changed");
}

#[test]
fn a_foreign_tracking_table_and_a_non_sqlite_file_are_clear_errors() {
    let dir = tests::scratch();
    let m = simple_set(dir.path());
    let db = dir.path().join("other-tool.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE _migrations (id INTEGER PRIMARY KEY, script_name TEXT, run_on TEXT);")
        .unwrap();
    let before = file_bytes(&db);
    let (ok, err) = run_worker(&[m.as_os_str(), db.as_os_str()]);
    assert!(!ok);
    assert!(
        err.contains("tracking table `_migrations` has the wrong shape"),
        "{err}"
    );
    assert_eq!(file_bytes(&db), before);

    let junk = dir.path().join("junk.db");
    let bytes: Vec<u8> = (0..8192u32).map(|i| u8::try_from(i * 31 % 251).unwrap_or(0)).collect();
    std::fs::write(&junk, &bytes).unwrap();
    let (ok, err) = run_worker(&[m.as_os_str(), junk.as_os_str()]);
    assert!(!ok);
    assert!(err.contains("not an SQLite database"), "{err}");
    assert_eq!(file_bytes(&junk), bytes);
}

// ---- the bad-input corpus: `cargo build` and `cargo migrate check` agree ----

/// The problems in cargo's output for a failed build script
/// (`error: testbox-corpus@0.0.0: <problem>`), and in `cargo migrate check`'s
/// (`error: <problem>`).
fn problem_lines(text: &str, prefix: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter(|l| l.starts_with("migrations"))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), target).unwrap();
        } else if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn every_bad_fixture_is_rejected_by_cargo_build_and_by_check_with_the_same_messages() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let pkg = tests::Package::named("corpus");
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(&fixtures)
        .unwrap()
        // Other tools' layouts, for `import` (tests/tests/import.rs).
        .filter(|e| e.as_ref().map_or(true, |e| e.file_name() != "import"))
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.path().join("migrations"))
        })
        .collect();
    cases.sort();
    // Cases that cannot live in git as files: made here.
    let extra = tests::scratch();
    let huge = extra.path().join("huge");
    std::fs::create_dir_all(&huge).unwrap();
    std::fs::write(huge.join("0001_a.sql"), "CREATE TABLE a (x);\n").unwrap();
    let mut big = String::from("INSERT INTO a VALUES\n");
    while big.len() <= usize::try_from(migrate_build::scan::MAX_FILE_SIZE).unwrap() {
        big.push_str("(1234567890),\n");
    }
    big.push_str("(0);\n");
    std::fs::write(huge.join("0002_huge.sql"), big).unwrap();
    cases.push(("huge_file".into(), huge));
    let dangling = extra.path().join("dangling");
    std::fs::create_dir_all(&dangling).unwrap();
    std::os::unix::fs::symlink(extra.path().join("nowhere.sql"), dangling.join("0001_a.sql")).unwrap();
    cases.push(("dangling_symlink".into(), dangling));

    let mut rejected = 0;
    for (name, dir) in &cases {
        copy_dir(dir, &pkg.path().join("migrations"));
        let (ok, stderr) = pkg.build();
        let check = pkg.migrate().arg("check").output().unwrap();
        let check_err = String::from_utf8_lossy(&check.stderr);
        if ok {
            assert!(
                check.status.success(),
                "{name}: cargo build passed but check failed:\n{check_err}"
            );
            continue;
        }
        rejected += 1;
        assert_eq!(check.status.code(), Some(1), "{name}: check must fail:\n{check_err}");
        let from_build = problem_lines(&stderr, &format!("error: {}@0.0.0: ", pkg.name()));
        let from_check = problem_lines(&check_err, "error: ");
        assert!(!from_build.is_empty(), "{name}: no problem lines in:\n{stderr}");
        assert_eq!(
            from_build, from_check,
            "{name}: cargo build and cargo migrate check disagree"
        );
    }
    assert!(rejected >= 25, "only {rejected} fixtures were rejected");
    eprintln!(
        "bad-input corpus: {rejected} of {} cases rejected identically by cargo build and cargo migrate check",
        cases.len()
    );
}

// ---- the app and the CLI starting at once ----

/// The app of the concurrency test: says at once when it starts waiting for
/// the lock (the report, printed at the end, says it again).
const WAITING_MAIN_RS: &str = r#"mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

fn main() {
    let path = std::env::args().nth(1).expect("a database path");
    let mut conn = migrate_runtime::rusqlite::Connection::open(&path).expect("open");
    let migrator = migrations::migrator().on_event(|event| {
        if let migrate_runtime::Event::Waiting { .. } = event {
            eprintln!("waiting for the lock");
        }
    });
    match migrator.apply(&mut conn) {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
"#;

/// Reads a child's stderr line by line in a thread, counting `waiting` into
/// `reported` the first time it appears; returns the whole text.
fn watch_stderr(
    stderr: std::process::ChildStderr,
    reported: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut text = String::new();
        let mut told = false;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !told && line.contains("waiting") {
                told = true;
                let _ = reported.send(());
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    })
}

#[test]
fn apps_and_the_cli_migrating_one_database_at_once_apply_each_migration_once() {
    let pkg = tests::Package::named("concurrent");
    pkg.write("src/main.rs", WAITING_MAIN_RS);
    for i in 1..=4 {
        pkg.write(
            &format!("migrations/{i:04}_step{i}.sql"),
            format!(
                "CREATE TABLE t{i} (x INTEGER);\n\
                 WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000)\n\
                 INSERT INTO t{i} SELECT x FROM c;\n"
            ),
        );
    }
    let (ok, stderr) = pkg.build();
    assert!(ok, "{stderr}");
    let app = pkg.binary();
    let dir = tests::scratch();
    let db = dir.path().join("shared.db");
    let url = format!("sqlite:{}", db.display());
    // Hold the write lock while they all start, so every one of them meets
    // another process's lock.
    let holder = Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (reported, waiting) = std::sync::mpsc::channel();
    let mut children = Vec::new();
    for i in 0..6 {
        let child = if i % 2 == 0 {
            Command::new(&app)
                .arg(&db)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        } else {
            Command::new(tests::bin("cargo-migrate"))
                .args(["migrate", "--manifest-path"])
                .arg(pkg.path().join("Cargo.toml"))
                .args(["up", "--database", &url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        };
        let mut child = child.unwrap();
        let stderr = watch_stderr(child.stderr.take().unwrap(), reported.clone());
        children.push((child, stderr));
    }
    // Release the lock once every process has said that it waits for it
    // (however long a loaded machine takes to start them), not after a
    // fixed delay.
    let deadline = Instant::now() + Duration::from_secs(50);
    for n in 0..children.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            waiting.recv_timeout(left).is_ok(),
            "only {n} of {} processes said they wait for the lock within 50 s",
            children.len()
        );
    }
    holder.execute_batch("ROLLBACK").unwrap();
    let mut waited = 0;
    for (i, (child, stderr)) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr.join().unwrap());
        assert!(out.status.success(), "{text}");
        // The apps' report says how long they waited; the CLI said so as it began.
        let said = if i % 2 == 0 { "waited" } else { "waiting up to" };
        if text.contains(said) {
            waited += 1;
        }
    }
    assert_eq!(waited, 6, "every process reports that it waited");
    let conn = Connection::open(&db).unwrap();
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT version, name FROM _migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for i in 1..=4 {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM t{i}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 300_000, "t{i} filled exactly once");
    }
}
