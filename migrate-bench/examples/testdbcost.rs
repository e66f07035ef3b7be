//! One per-test database of `n` generated migrations, for callgrind's
//! instruction counts: `copy` (`Migrator::test_db` after the template
//! exists, then the app's query, then close), `open` (open a migrated
//! file, the query, close: SQLite's own cost of a new connection to that
//! schema), `fresh` (open in memory, apply, the query, close):
//!
//! ```text
//! testdbcost N [copy|open|fresh] [tables|app]
//! ```
use migrate_runtime::Migrator;
use migrate_runtime::rusqlite::Connection;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let mode = args.next().unwrap_or_else(|| "copy".into());
    let set = if args.next().as_deref() == Some("app") {
        migrate_bench::generate_app(n)
    } else {
        migrate_bench::generate(n)
    };
    let ours = migrate_bench::ours(&set);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ready.db");
    match mode.as_str() {
        "copy" => drop(Migrator::new(&ours).test_db().unwrap()),
        "open" => Migrator::new(&ours)
            .apply(&mut Connection::open(&file).unwrap())
            .map(drop)
            .unwrap(),
        _ => {}
    }
    timed(&ours, &mode, &file);
}

#[inline(never)]
fn timed(ours: &[migrate_runtime::Migration], mode: &str, file: &std::path::Path) {
    let conn = match mode {
        "copy" => Migrator::new(ours).test_db().unwrap(),
        "open" => Connection::open(file).unwrap(),
        _ => {
            let mut conn = Connection::open_in_memory().unwrap();
            Migrator::new(ours).apply(&mut conn).unwrap();
            conn
        }
    };
    assert_eq!(migrate_bench::app_query(&conn), 0);
}
