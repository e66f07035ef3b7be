//! One no-op start-up (open, `apply` with nothing pending, the app's
//! query, close) of `n` generated migrations against a database they were
//! applied to, for callgrind's instruction counts of `timed` alone:
//!
//! ```text
//! startupcost N DB [tables|app] [floor|drift]
//! ```
//!
//! With `floor`, `timed` opens, runs the query and closes, without
//! `apply`: the floor of the start-up workload (give it
//! `startup-floor-N.db`). With `drift`, the migrations carry the schema
//! fingerprints the build records (computed before timing), so the
//! start-up's drift check is counted too, as in `ours+query`.
//! The database is one the start-up workload keeps with `--dir`
//! (`startup-ours-N.db`). Without `drift` the migrations carry no schema
//! fingerprints, so the drift check is not counted: this is the history
//! check alone.
use migrate_runtime::Migrator;
use migrate_runtime::rusqlite::Connection;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let db = args.next().expect("the database path");
    let set = if args.next().as_deref() == Some("app") {
        migrate_bench::generate_app(n)
    } else {
        migrate_bench::generate(n)
    };
    let mode = args.next();
    let floor = mode.as_deref() == Some("floor");
    let ours = if mode.as_deref() == Some("drift") {
        migrate_bench::ours_with_fingerprints(&set)
    } else {
        migrate_bench::ours(&set)
    };
    // As the generated module's migrator() has it, computed by the build.
    let digest = migrate_bench::code_digest(&ours);
    timed(&ours, digest, &db, floor);
    timed(&ours, digest, &db, floor);
}

#[inline(never)]
fn timed(ours: &[migrate_runtime::Migration], digest: u128, db: &str, floor: bool) {
    let mut conn = Connection::open(db).unwrap();
    if !floor {
        let report = Migrator::new(ours).__code_digest(digest).apply(&mut conn).unwrap();
        assert!(report.is_empty());
    }
    assert_eq!(migrate_bench::app_query(&conn), 0);
}
