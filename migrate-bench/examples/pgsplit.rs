//! Where a PostgreSQL start-up's time goes, phase by phase: connect, the
//! probe (a raw statement, or ours with the drift check off), the app's
//! query, close; the median of each over rotated rounds.
//!
//! ```text
//! MIGRATE_TEST_POSTGRES_URL=… pgsplit N ROUNDS 'RAW SQL'
//! ```
use std::time::{Duration, Instant};

use migrate_bench::pg::Fixture;
use migrate_runtime::postgres::{Client, NoTls};
use migrate_runtime::{DriftPolicy, Migrator};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(101);
    let Some(raw) = args.next() else {
        eprintln!("usage: pgsplit N ROUNDS 'RAW SQL'");
        std::process::exit(2);
    };
    let fixture = Fixture::new(n);
    let db = fixture.migrated_database("probe");
    let digest = migrate_bench::code_digest(fixture.ours());
    let mut phases = vec![vec![Vec::<Duration>::new(); 4]; 3];
    let mut made = Vec::new();
    for round in 0..=rounds {
        for i in 0..3 {
            let v = (round + i) % 3;
            let t0 = Instant::now();
            let mut client = Client::connect(&db.url, NoTls).expect("connect");
            let t1 = Instant::now();
            match v {
                0 => {}
                1 => {
                    client.simple_query(&raw).expect("raw");
                }
                _ => {
                    let migrator = Migrator::new(fixture.ours())
                        .__code_digest(digest)
                        .drift(DriftPolicy::Off);
                    let built = Instant::now();
                    let report = migrator.apply_postgres(&mut client).expect("ours");
                    assert!(report.is_empty());
                    if round > 0 {
                        made.push(built - t1);
                    }
                }
            }
            let t2 = Instant::now();
            client.simple_query(migrate_bench::APP_QUERY).expect("app");
            let t3 = Instant::now();
            drop(client);
            let t4 = Instant::now();
            if round > 0 {
                for (k, d) in [t1 - t0, t2 - t1, t3 - t2, t4 - t3].into_iter().enumerate() {
                    phases[v][k].push(d);
                }
            }
        }
    }
    made.sort();
    println!(
        "making the migrator: {:.1} µs",
        made[made.len() / 2].as_secs_f64() * 1e6
    );
    for (v, name) in ["floor", "raw", "ours"].iter().enumerate() {
        let med: Vec<String> = phases[v]
            .iter_mut()
            .map(|p| {
                p.sort();
                format!("{:>8.1}", p[p.len() / 2].as_secs_f64() * 1e6)
            })
            .collect();
        println!("{name:>6} connect/middle/app/drop µs: {}", med.join(" "));
    }
}
