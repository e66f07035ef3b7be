//! Incremental build checks (the replay cache in `OUT_DIR/replay-cache`):
//! a cache never changes what a build reports or generates (a property
//! test over random migration sets and random edits), a build that
//! changed nothing re-runs nothing, and an edit in the middle re-checks
//! from the last kept prefix before it — in real cargo builds.

use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::rc::Rc;

use proptest::prelude::*;

/// A `Write` whose bytes the test reads afterwards.
#[derive(Clone, Default)]
struct Captured(Rc<RefCell<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One random migration: its file name stem, up and (maybe) down SQL.
/// Kinds: a table; a column with its down; an index with its down; rows;
/// a rename (read as touching the whole schema); a down that does not
/// undo its up (an error); a down that reorders columns (a warning); an up
/// that fails (an error that stops the replay); and for the lint (on from
/// version 1): a `DELETE` without `WHERE` (a warning, waived in even
/// versions), a unique index on `base` (a warning), a foreign key to a
/// missing table (an error), a stale waiver (a warning).
fn migration(i: usize, kind: u8) -> (String, String, Option<String>) {
    let t = format!("t{i}");
    match kind % 12 {
        0 => (
            format!("table_{i}"),
            format!("CREATE TABLE {t} (id INTEGER PRIMARY KEY, a, b);"),
            Some(format!("DROP TABLE {t};")),
        ),
        1 => (
            format!("column_{i}"),
            format!("ALTER TABLE base ADD COLUMN c{i};"),
            Some(format!("ALTER TABLE base DROP COLUMN c{i};")),
        ),
        2 => (
            format!("index_{i}"),
            format!("CREATE INDEX i{i} ON base (x);"),
            Some(format!("DROP INDEX i{i};")),
        ),
        3 => (format!("rows_{i}"), format!("INSERT INTO base (x) VALUES ({i});"), None),
        4 => (
            format!("rename_{i}"),
            format!("CREATE TABLE {t}_old (x); ALTER TABLE {t}_old RENAME TO {t};"),
            Some(format!("DROP TABLE {t};")),
        ),
        5 => (
            format!("bad_down_{i}"),
            format!("CREATE TABLE {t} (x);"),
            Some("SELECT 1;".to_owned()),
        ),
        6 => (
            format!("reorder_{i}"),
            format!("CREATE TABLE {t} (a, b, c); ALTER TABLE {t} DROP COLUMN a;"),
            Some(format!("ALTER TABLE {t} ADD COLUMN a; DROP TABLE {t};")),
        ),
        7 => {
            let waiver = if i.is_multiple_of(2) {
                "-- migrate:allow MS008 test rows only\n"
            } else {
                ""
            };
            (format!("purge_{i}"), format!("{waiver}DELETE FROM base;"), None)
        }
        8 => (
            format!("unique_{i}"),
            format!("CREATE UNIQUE INDEX u{i} ON base (x);"),
            Some(format!("DROP INDEX u{i};")),
        ),
        9 => (
            format!("dangling_{i}"),
            format!("CREATE TABLE {t} (p REFERENCES missing_{i} (id));"),
            None,
        ),
        10 => (
            format!("stale_{i}"),
            format!("-- migrate:allow MS001 nothing is dropped\nCREATE TABLE {t} (x);"),
            None,
        ),
        _ => (
            format!("broken_{i}"),
            format!("INSERT INTO missing_{i} VALUES (1);"),
            None,
        ),
    }
}

/// Writes the set (`kinds[i]` for migration i + 2; migration 1 makes
/// `base`) into `dir/migrations`, replacing what was there.
fn write_set(dir: &Path, kinds: &[u8]) {
    let m = dir.join("migrations");
    let _ = std::fs::remove_dir_all(&m);
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(
        m.join("0001_base.sql"),
        "CREATE TABLE base (id INTEGER PRIMARY KEY, x);\n",
    )
    .unwrap();
    for (i, &kind) in kinds.iter().enumerate() {
        let version = i + 2;
        let (name, up, down) = migration(version, kind);
        match down {
            Some(down) => {
                std::fs::write(m.join(format!("{version:04}_{name}.up.sql")), up).unwrap();
                std::fs::write(m.join(format!("{version:04}_{name}.down.sql")), down).unwrap();
            }
            None => std::fs::write(m.join(format!("{version:04}_{name}.sql")), up).unwrap(),
        }
    }
}

/// One build of the package at `dir` into `out`: the directives it wrote
/// (but the line that says what came from the cache), whether it
/// succeeded, the generated module, and how much came from the cache.
fn build(dir: &Path, out: &Path) -> (String, bool, Option<String>, usize) {
    let captured = Captured::default();
    let result = migrate_build::Builder::new()
        .package_dir(dir)
        .out_dir(out)
        .config(lint_config())
        .directives(captured.clone())
        .build();
    let text = String::from_utf8(captured.0.borrow().clone()).unwrap();
    let directives: String = text
        .lines()
        .filter(|l| !l.starts_with("migrate-build: checked"))
        .map(|l| format!("{l}\n"))
        .collect();
    let module = std::fs::read_to_string(out.join(migrate_build::OUTPUT_FILE)).ok();
    let cached = result.as_ref().map_or(0, |b| b.cached);
    let ok = result.is_ok();
    (directives, ok, ok.then_some(module).flatten(), cached)
}

/// The config of the property test: the defaults, with the lint on.
fn lint_config() -> migrate_build::Config {
    let mut config = migrate_build::Config::default();
    config.lint_from = Some(1);
    config
}

proptest! {
    // Each case replays its sets three times, with real files.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_cache_never_changes_what_a_build_reports_or_generates(
        before in prop::collection::vec(0u8..22, 0..14),
        edit in prop::collection::vec((0usize..14, 0u8..22), 0..3),
        appended in prop::collection::vec(0u8..22, 0..3),
        cut in 0usize..3,
    ) {
        // The kinds 12..22 are plain tables, so most sets get far.
        let plain = |k: u8| if k >= 12 { 0 } else { k };
        let before: Vec<u8> = before.into_iter().map(plain).collect();
        let mut after = before.clone();
        for (at, kind) in edit {
            if let Some(slot) = after.get_mut(at) {
                *slot = plain(kind);
            }
        }
        after.truncate(after.len().saturating_sub(cut % 2));
        after.extend(appended.into_iter().map(plain));

        let pkg = tests::scratch();
        let cached_out = tests::scratch();
        write_set(pkg.path(), &before);
        build(pkg.path(), cached_out.path());
        write_set(pkg.path(), &after);
        let with_cache = build(pkg.path(), cached_out.path());
        // And once more, now that the cache holds `after` itself.
        let again = build(pkg.path(), cached_out.path());
        let fresh_out = tests::scratch();
        let without = build(pkg.path(), fresh_out.path());
        prop_assert_eq!(without.3, 0);
        for cached in [&with_cache, &again] {
            prop_assert_eq!(&cached.0, &without.0, "the same diagnostics");
            prop_assert_eq!(cached.1, without.1);
            prop_assert_eq!(&cached.2, &without.2, "the same generated module");
        }
    }
}

/// A package of `n` migrations: a table each, every tenth with a down.
fn many(pkg: &tests::Package, n: usize) {
    for i in 1..=n {
        let up = format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT);\n");
        if i % 10 == 0 {
            pkg.write(&format!("migrations/{i:04}_t{i}.up.sql"), up);
            pkg.write(
                &format!("migrations/{i:04}_t{i}.down.sql"),
                format!("DROP TABLE t{i};\n"),
            );
        } else {
            pkg.write(&format!("migrations/{i:04}_t{i}.sql"), up);
        }
    }
}

/// What the build script said about the replay, from `cargo build -vv`:
/// `(checked, replayed, from the cache)`, or `None` when it did not run.
fn replay_line(stderr: &str) -> Option<(usize, usize, usize)> {
    // `[testbox-… 0.0.0] migrate-build: checked N migrations, replayed R
    // (the first C from the replay cache in …)`.
    let line = stderr
        .lines()
        .find_map(|l| l.split_once("migrate-build: checked ").map(|(_, rest)| rest))?;
    let line = &line[..line.find(" from the replay cache")?];
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    Some((numbers[0], numbers[1], numbers[2]))
}

#[test]
fn builds_re_run_nothing_when_nothing_changed_and_re_check_from_before_an_edit() {
    let pkg = tests::Package::named("replay_cache");
    many(&pkg, 1000);
    // Cargo gives the package the same OUT_DIR in every run of this test,
    // where the last run's cache holds these very migrations: a first
    // migration of this run's own makes every key new.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    pkg.write(
        "migrations/0001_t1.sql",
        format!("CREATE TABLE t1 (id INTEGER PRIMARY KEY, v TEXT); -- run {nonce}\n"),
    );
    let build = || {
        let out = pkg.cargo(&["build", "-vv"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    };
    let first = build();
    assert_eq!(replay_line(&first), Some((1000, 1000, 0)), "{first}");

    // Nothing touched: cargo does not run the build script at all.
    let second = build();
    assert_eq!(replay_line(&second), None, "{second}");

    // A file touched but not changed: the script runs, the cache answers.
    let path = pkg.path().join("migrations/0500_t500.up.sql");
    let text = std::fs::read(&path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&path, &text).unwrap();
    let touched = build();
    assert_eq!(replay_line(&touched), Some((1000, 0, 1000)), "{touched}");

    // Migration 500 edited: re-checked from the last kept prefix before
    // it (every 63rd of 1,000: 441), not from the start.
    pkg.write(
        "migrations/0500_t500.up.sql",
        "CREATE TABLE t500 (id INTEGER PRIMARY KEY, v TEXT, w);\n",
    );
    let edited = build();
    assert_eq!(replay_line(&edited), Some((1000, 559, 441)), "{edited}");

    // A migration added: one replayed.
    pkg.write("migrations/1001_t1001.sql", "CREATE TABLE t1001 (x);\n");
    let added = build();
    assert_eq!(replay_line(&added), Some((1001, 1, 1000)), "{added}");
}

#[test]
fn cargo_migrate_check_uses_a_cache_of_its_own_and_still_finds_every_error() {
    let pkg = tests::Package::new();
    for i in 1..=5 {
        pkg.write(
            &format!("migrations/{i:04}_t{i}.sql"),
            format!("CREATE TABLE t{i} (x);\n"),
        );
    }
    let check = || {
        let out = pkg.migrate().arg("check").output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(check(), (true, "checked 5 migrations in migrations: ok\n".to_owned()));
    let (ok, again) = check();
    assert!(
        ok && again.contains("ok (the first 5 unchanged, from the check cache in target/migrate-check-cache/"),
        "{again}"
    );
    let cache = pkg.path().join("target/migrate-check-cache").join(pkg.name());
    assert!(std::fs::read_dir(&cache).unwrap().count() > 0);

    // An error after the cached prefix is found; one inside it too (the
    // prefix changes, so its files no longer match).
    pkg.write("migrations/0006_bad.sql", "INSERT INTO nowhere VALUES (1);\n");
    let (ok, text) = check();
    assert!(
        !ok && text.contains("migrations/0006_bad.sql:1: up migration 6 `bad` fails: no such table: nowhere"),
        "{text}"
    );
    std::fs::remove_file(pkg.path().join("migrations/0006_bad.sql")).unwrap();
    pkg.write("migrations/0003_t3.sql", "CREATE TABLE t2 (x);\n");
    let (ok, text) = check();
    assert!(
        !ok && text.contains("migrations/0003_t3.sql:1: up migration 3 `t3` fails: table t2 already exists"),
        "{text}"
    );

    // Every cache file damaged: ignored, and the check is what it was.
    pkg.write("migrations/0003_t3.sql", "CREATE TABLE t3 (x);\n");
    for entry in std::fs::read_dir(&cache).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    assert_eq!(check(), (true, "checked 5 migrations in migrations: ok\n".to_owned()));
}
