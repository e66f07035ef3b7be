//! Build-time validation of N generated migrations (scan, replay, down round
//! trips, code generation) against the floor: SQLite alone running every up
//! once in memory. Runs are alternated (floor, ours, floor, ours, …).
//!
//! `cargo run --release -p migrate-bench --bin build-time -- [N] [ROUNDS]`

use migrate_bench::{generate, median, time, write_dir};
use migrate_runtime::rusqlite::Connection;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let set = generate(n);
    let package = tempfile::tempdir().expect("tempdir");
    write_dir(package.path(), &set);
    let out = tempfile::tempdir().expect("tempdir");

    let floor = || {
        let conn = Connection::open_in_memory().expect("open");
        for m in &set {
            conn.execute_batch(&m.up).expect("up");
        }
    };
    let ours = || {
        migrate_build::Builder::new()
            .package_dir(package.path())
            .out_dir(out.path())
            .directives(std::io::sink())
            .build()
            .expect("build");
    };
    let (mut floors, mut builds, mut unchanged) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        floors.push(time(floor));
        let _ = std::fs::remove_file(out.path().join("migrations.rs"));
        builds.push(time(ours));
        unchanged.push(time(ours));
    }
    let (f, b, u) = (median(floors), median(builds), median(unchanged));
    let config = migrate_build::Config::default();
    let scan = median(
        (0..rounds)
            .map(|_| time(|| drop(migrate_build::load(package.path(), &config))))
            .collect(),
    );
    let check = median(
        (0..rounds)
            .map(|_| time(|| drop(migrate_build::check(package.path(), &config))))
            .collect(),
    );
    println!(
        "  of which scan (read and check the files): {:>9.1} ms",
        scan.as_secs_f64() * 1e3
    );
    println!(
        "  of which scan + replay + round trips: {:>9.1} ms",
        check.as_secs_f64() * 1e3
    );
    println!("N = {n}, {rounds} rounds, medians:");
    println!(
        "  floor (SQLite runs every up once, in memory): {:>9.1} ms",
        f.as_secs_f64() * 1e3
    );
    println!(
        "  migrate-build (scan, replay, round trips, codegen): {:>9.1} ms  = {:.2}x floor",
        b.as_secs_f64() * 1e3,
        b.as_secs_f64() / f.as_secs_f64()
    );
    println!(
        "  same, output unchanged (not rewritten): {:>9.1} ms",
        u.as_secs_f64() * 1e3
    );
}
