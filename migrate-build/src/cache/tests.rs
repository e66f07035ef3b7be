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

/// The migrations of the package at `pkg`, as the runtime applies them.
fn migrations_of(pkg: &Path) -> Vec<migrate_runtime::Migration> {
    let loaded = crate::load(pkg, &Config::default()).unwrap();
    loaded.migrations.iter().map(crate::scan::Found::to_migration).collect()
}

/// What a drift replay of `versions` makes (the schema as SQL, the model,
/// every row of every table but the tracking table), started from the
/// cache in `dir` or from nothing; and how many migrations came from the
/// cache.
fn drift_replay(pkg: &Path, versions: &[u64], dir: Option<&Path>) -> (String, usize) {
    use migrate_runtime::model::{Filter, Model, schema_sql};
    let config = Config::default();
    let migrations = migrations_of(pkg);
    let migrator = migrate_runtime::Migrator::new(&migrations).table(&config.table);
    let (conn, resumed) = match dir {
        Some(dir) => {
            let mut cache = super::Cache::new(dir, &config, &migrations);
            let conn = migrator.replay_versions_cached(versions, &mut cache).unwrap();
            (conn, cache.resumed)
        }
        None => (migrator.replay_versions(versions).unwrap(), 0),
    };
    let filter = Filter::new(&config.table);
    let mut out = format!(
        "{}\n{:?}\n",
        schema_sql(&conn, &filter).unwrap(),
        Model::read(&conn, &filter).unwrap()
    );
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_migrations' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
            .unwrap();
        let n = stmt.column_count();
        let rows: Vec<String> = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get::<_, rusqlite::types::Value>(i).map(|v| format!("{v:?}")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| v.join("|"))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.push_str(&format!("{table}: {rows:?}\n"));
    }
    (out, resumed)
}

#[test]
fn drift_replays_start_from_the_checks_prefixes_and_make_the_same() {
    let pkg = package(40);
    // Rows, so that the data is compared too.
    std::fs::write(
        pkg.path().join("migrations/0041_rows.sql"),
        "INSERT INTO t1 (id, b) VALUES (1, 'x'), (2, 'y');\n",
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let all: Vec<u64> = (1..=41).collect();
    // No cache yet: from nothing, and nothing is written.
    let cold = drift_replay(pkg.path(), &all, Some(cache.path()));
    assert_eq!(cold, (drift_replay(pkg.path(), &all, None).0, 0));
    assert!(cache_files(cache.path()).is_empty(), "a drift replay saves nothing");
    check(pkg.path(), Some(cache.path()));
    // Every migration applied: the whole set from the cache.
    assert_eq!(drift_replay(pkg.path(), &all, Some(cache.path())), (cold.0, 41));
    // The first 25 applied: the kept prefix of 24 (every 3rd of 41).
    let first: Vec<u64> = (1..=25).collect();
    let (plain, _) = drift_replay(pkg.path(), &first, None);
    assert_eq!(drift_replay(pkg.path(), &first, Some(cache.path())), (plain, 24));
    // Migration 10 not applied (10 pending, later ones applied out of
    // order): no prefix that holds it.
    let gap: Vec<u64> = all.iter().copied().filter(|&v| v != 10).collect();
    let (plain, _) = drift_replay(pkg.path(), &gap, None);
    assert_eq!(drift_replay(pkg.path(), &gap, Some(cache.path())), (plain, 9));
}

#[test]
fn a_round_trip_outside_a_transaction_or_connection_state_ends_the_usable_prefix() {
    let pkg = package(12);
    let migrations = pkg.path().join("migrations");
    // Migration 6 (with a down): its round trip runs outside a transaction.
    std::fs::write(
        migrations.join("0006_t6.up.sql"),
        "-- migrate:no-transaction\nCREATE TABLE t6 (id INTEGER PRIMARY KEY, a, b);\n",
    )
    .unwrap();
    // Migration 9: a setting of the connection, which no file holds.
    std::fs::write(
        migrations.join("0009_t9.up.sql"),
        "PRAGMA recursive_triggers = ON;\nCREATE TABLE t9 (id INTEGER PRIMARY KEY, a, b);\n",
    )
    .unwrap();
    // Migration 4: a pragma kept in the database file does not count.
    std::fs::write(
        migrations.join("0004_t4.sql"),
        "PRAGMA main.user_version = 4;\nCREATE TABLE t4 (id INTEGER PRIMARY KEY, a, b);\n",
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let all: Vec<u64> = (1..=12).collect();
    assert_eq!(check(pkg.path(), Some(cache.path())).cached, 0);
    // The check's own replay ran migration 6's round trip in its
    // database, so it resumes after it; not after migration 9.
    let again = check(pkg.path(), Some(cache.path()));
    assert_eq!(again.cached, 8);
    assert_eq!(outcome(&again), outcome(&check(pkg.path(), None)));
    let (plain, _) = drift_replay(pkg.path(), &all, None);
    assert_eq!(drift_replay(pkg.path(), &all, Some(cache.path())), (plain, 5));
}
