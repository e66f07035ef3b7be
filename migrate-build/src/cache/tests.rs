use std::path::Path;

use crate::{Checked, Config, check_incremental};

/// A package with `n` migrations: a table each, every third one with a
/// down, and one down that gives back its columns in another order (a
/// warning, which the cache must give back too).
fn package(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    for i in 1..=n {
        let up = format!("CREATE TABLE t{i} (id INTEGER PRIMARY KEY, a, b);\n");
        if i % 3 == 0 {
            std::fs::write(migrations.join(format!("{i:04}_t{i}.up.sql")), up).unwrap();
            std::fs::write(
                migrations.join(format!("{i:04}_t{i}.down.sql")),
                format!("DROP TABLE t{i};\n"),
            )
            .unwrap();
        } else if i == 2 {
            std::fs::write(
                migrations.join(format!("{i:04}_t{i}.up.sql")),
                format!("{up}ALTER TABLE t1 DROP COLUMN a;\n"),
            )
            .unwrap();
            std::fs::write(
                migrations.join(format!("{i:04}_t{i}.down.sql")),
                format!("ALTER TABLE t1 ADD COLUMN a;\nDROP TABLE t{i};\n"),
            )
            .unwrap();
        } else {
            std::fs::write(migrations.join(format!("{i:04}_t{i}.sql")), up).unwrap();
        }
    }
    dir
}

fn check(package: &Path, cache: Option<&Path>) -> Checked {
    check_incremental(package, &Config::default(), None, cache).unwrap()
}

/// Everything a check gives the build, but how much came from the cache.
fn outcome(c: &Checked) -> String {
    format!(
        "{:?} {:?} {:?} {:?}",
        c.tables, c.warnings, c.fingerprints, c.schema_sql
    )
}

fn cache_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn a_second_check_resumes_from_the_whole_set_and_finds_the_same() {
    let pkg = package(20);
    let cache = tempfile::tempdir().unwrap();
    let plain = check(pkg.path(), None);
    assert_eq!(plain.cached, 0);
    let first = check(pkg.path(), Some(cache.path()));
    assert_eq!(first.cached, 0);
    let second = check(pkg.path(), Some(cache.path()));
    assert_eq!(second.cached, 20);
    assert_eq!(outcome(&first), outcome(&plain));
    assert_eq!(outcome(&second), outcome(&plain));
    assert_eq!(second.warnings.len(), 1, "{:?}", second.warnings);
    // Every 2nd prefix of 20 (spacing 20/16 rounded up) and the whole set.
    assert_eq!(cache_files(cache.path()).len(), 10);
}

#[test]
fn an_edit_resumes_from_the_kept_prefix_before_it() {
    let pkg = package(40);
    let cache = tempfile::tempdir().unwrap();
    check(pkg.path(), Some(cache.path()));
    std::fs::write(
        pkg.path().join("migrations/0020_t20.sql"),
        "CREATE TABLE t20 (id INTEGER PRIMARY KEY, c);\n",
    )
    .unwrap();
    let edited = check(pkg.path(), Some(cache.path()));
    // Prefixes are kept every 3 (40 / 16 rounded up): 18 is the last
    // before migration 20.
    assert_eq!(edited.cached, 18);
    assert_eq!(outcome(&edited), outcome(&check(pkg.path(), None)));
    // The files of the old set after 18 are gone, the new ones are there.
    assert!(cache_files(cache.path()).len() <= 15, "{:?}", cache_files(cache.path()));
    assert_eq!(check(pkg.path(), Some(cache.path())).cached, 40);
}

#[test]
fn corrupt_truncated_and_foreign_files_are_ignored_and_replaced() {
    let pkg = package(6);
    let other = package(7);
    std::fs::write(
        other.path().join("migrations/0001_t1.sql"),
        "CREATE TABLE t1 (id INTEGER PRIMARY KEY, a, b, c);\n",
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let plain = outcome(&check(pkg.path(), None));
    check(pkg.path(), Some(cache.path()));
    let files = cache_files(cache.path());
    let whole = files
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    let good = std::fs::read(&whole).unwrap();

    // One byte flipped in the image.
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x40;
    std::fs::write(&whole, &bad).unwrap();
    let again = check(pkg.path(), Some(cache.path()));
    assert!(again.cached < 6, "a corrupt file is not trusted");
    assert_eq!(outcome(&again), plain);
    assert_eq!(check(pkg.path(), Some(cache.path())).cached, 6, "and is replaced");

    // Cut short; then garbage.
    for bytes in [good[..good.len() - 100].to_vec(), b"not a cache".to_vec(), Vec::new()] {
        std::fs::write(&whole, &bytes).unwrap();
        let again = check(pkg.path(), Some(cache.path()));
        assert!(again.cached < 6);
        assert_eq!(outcome(&again), plain);
    }

    // A valid file of another set, under this set's name: another key
    // inside, so it is not taken.
    let foreign_cache = tempfile::tempdir().unwrap();
    check(other.path(), Some(foreign_cache.path()));
    for foreign in cache_files(foreign_cache.path()) {
        for ours in cache_files(cache.path()) {
            std::fs::copy(&foreign, &ours).unwrap();
        }
        let again = check(pkg.path(), Some(cache.path()));
        assert_eq!(again.cached, 0, "no file of ours is left to trust");
        assert_eq!(outcome(&again), plain);
    }
}

#[test]
fn another_config_or_a_replay_setup_does_not_use_the_files() {
    let pkg = package(5);
    let cache = tempfile::tempdir().unwrap();
    check(pkg.path(), Some(cache.path()));
    let other = Config {
        table: "other_migrations".into(),
        ..Config::default()
    };
    let checked = check_incremental(pkg.path(), &other, None, Some(cache.path())).unwrap();
    assert_eq!(checked.cached, 0);
    let setup = |_: &rusqlite::Connection| Ok(());
    let checked = check_incremental(pkg.path(), &Config::default(), Some(&setup), Some(cache.path())).unwrap();
    assert_eq!(checked.cached, 0, "a replay_setup is code no key can describe");
}
