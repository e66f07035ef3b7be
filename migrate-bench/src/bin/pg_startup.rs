//! The start-up cost of PostgreSQL's drift check: `apply_postgres` with
//! nothing pending, the check on (`DriftPolicy::Error`, the default) and
//! off, against the floor of one query on an open connection, for N
//! migrations that each create a table with an index.
//!
//! `MIGRATE_BENCH_POSTGRES_URL=postgres://… cargo run --release -p migrate-bench --features postgres --bin pg_startup [N…]`
//! (a role that may CREATE DATABASE; each N runs in a database of its own,
//! dropped afterwards).

use std::time::{Duration, Instant};

use migrate_runtime::postgres::Config;
use migrate_runtime::{DriftPolicy, Migration, Migrator, ScratchDatabase, Script};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    f(); // warm: prepared plans, caches
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let url = std::env::var("MIGRATE_BENCH_POSTGRES_URL")
        .expect("set MIGRATE_BENCH_POSTGRES_URL to a PostgreSQL server (a role that may CREATE DATABASE)");
    let server: Config = url.parse().expect("a valid PostgreSQL URL");
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![10, 100, 1000] } else { sizes };
    println!(
        "| migrations | floor (SELECT 1) | apply, drift off | apply, drift check on | check on / floor | check on − off |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let migrations: Vec<Migration> = (1..=n as u64)
            .map(|v| {
                Migration::new(
                    v,
                    format!("t{v}"),
                    Script::new(
                        format!("CREATE TABLE t{v} (id bigint PRIMARY KEY, name text NOT NULL, at timestamptz DEFAULT now());\nCREATE INDEX t{v}_name ON t{v} (name);"),
                        format!("migrations/{v:04}_t{v}.sql"),
                    ),
                )
            })
            .collect();
        let mut db = ScratchDatabase::create(&server, "migrate_bench_").expect("a scratch database");
        let client = db.client();
        Migrator::new(&migrations).apply_postgres(client).expect("applied");
        let runs = if n >= 1000 { 15 } else { 50 };
        let floor = time(runs, || {
            client.simple_query("SELECT 1").expect("SELECT 1");
        });
        let off = time(runs, || {
            let report = Migrator::new(&migrations)
                .drift(DriftPolicy::Off)
                .apply_postgres(client)
                .expect("apply");
            assert!(report.is_empty());
        });
        let on = time(runs, || {
            let report = Migrator::new(&migrations).apply_postgres(client).expect("apply");
            assert!(report.is_empty());
        });
        println!(
            "| {n} | {:.2} ms | {:.2} ms | {:.2} ms | {:.1}× | {:.2} ms |",
            floor.as_secs_f64() * 1e3,
            off.as_secs_f64() * 1e3,
            on.as_secs_f64() * 1e3,
            on.as_secs_f64() / floor.as_secs_f64(),
            (on.as_secs_f64() - off.as_secs_f64()) * 1e3,
        );
    }
}
