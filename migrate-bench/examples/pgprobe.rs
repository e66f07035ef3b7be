//! Experiments on PostgreSQL's no-op start-up: each variant is a new
//! connection, some SQL, the app's query, close; rounds rotate the order.
//!
//! ```text
//! MIGRATE_TEST_POSTGRES_URL=… pgprobe N ROUNDS 'SQL' ['SQL' …]
//! ```
use std::time::{Duration, Instant};

use migrate_bench::pg::{Fixture, Startup};
use migrate_runtime::postgres::{Client, NoTls};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(101);
    let mut sqls: Vec<String> = vec![String::new(), "SELECT 1".into()];
    let (setup, variants): (Vec<String>, Vec<String>) = args.partition(|a| a.starts_with("SETUP:"));
    sqls.extend(variants);
    let fixture = Fixture::new(n);
    let db = fixture.migrated_database("probe");
    let mut admin = Client::connect(&db.url, NoTls).expect("connect");
    for sql in &setup {
        admin.batch_execute(&sql["SETUP:".len()..]).expect("the set-up");
    }
    drop(admin);
    let k = sqls.len() + if setup.is_empty() { 2 } else { 1 };
    let mut ratios = vec![Vec::new(); k];
    let mut times = vec![Vec::new(); k];
    for round in 0..=rounds {
        let mut this = vec![Duration::ZERO; k];
        for i in 0..k {
            let v = (round + i) % k;
            this[v] = if v < sqls.len() {
                let start = Instant::now();
                let mut client = Client::connect(&db.url, NoTls).expect("connect");
                if !sqls[v].is_empty() {
                    client.simple_query(&sqls[v]).expect("the variant");
                }
                client.simple_query(migrate_bench::APP_QUERY).expect("the app's query");
                drop(client);
                start.elapsed()
            } else if v == sqls.len() {
                fixture.startup(Startup::OursDriftOff, &db.url)
            } else {
                fixture.startup(Startup::Ours, &db.url)
            };
        }
        if round == 0 {
            continue;
        }
        for v in 0..k {
            ratios[v].push(this[v].as_secs_f64() / this[0].as_secs_f64());
            times[v].push(this[v]);
        }
    }
    for v in 0..k {
        let name = if v < sqls.len() {
            if sqls[v].is_empty() { "floor" } else { &sqls[v] }
        } else if v == sqls.len() {
            "ours drift off"
        } else {
            "ours"
        };
        ratios[v].sort_by(f64::total_cmp);
        times[v].sort();
        println!(
            "{:>8.3} ms {:>6.3}x  {name}",
            times[v][rounds / 2].as_secs_f64() * 1e3,
            ratios[v][rounds / 2]
        );
    }
}
