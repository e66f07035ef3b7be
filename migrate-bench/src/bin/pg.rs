//! The PostgreSQL benchmark: cargo-migrate's PostgreSQL backend against the
//! floor (the `postgres` crate, fewest round trips, no checks), refinery and
//! sqlx, on a throw-away cluster (the test suite's, started from
//! `pg_config --bindir`; or `MIGRATE_TEST_POSTGRES_URL`).
//!
//! ```text
//! cargo run --release -p migrate-bench --features pg-peers --bin pg -- \
//!     [--n 100,1000] [--workload apply,startup,roundtrips] [--rounds R] \
//!     [--only NAME,…]
//! ```
//!
//! Every round runs each contender once, each on a new database created
//! before its timing starts; the table shows each contender's median and
//! the median of its per-round ratio to its floor. The start-up's rounds
//! rotate the order (round r starts with the r-th contender), so no
//! contender always runs first, after the previous round's last backend
//! exits; `--only` keeps the named start-up contenders and the floor.
//! `roundtrips` runs each contender once through a counting proxy and
//! prints the round trips (client `Query` and `Sync` messages) of a fresh
//! apply and of a start-up with nothing pending.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use migrate_bench::median;
use migrate_bench::pg::proxy::Proxy;
use migrate_bench::pg::{Apply, Fixture, Startup};

const USAGE: &str = "usage: pg [--n 100,1000] [--workload apply,startup,roundtrips] [--rounds R] [--only NAME,…]";

fn main() -> ExitCode {
    let mut ns = vec![100, 1000];
    let mut workloads = vec!["apply".to_owned(), "startup".to_owned(), "roundtrips".to_owned()];
    let mut rounds = None;
    let mut only: Vec<Startup> = Startup::ALL.to_vec();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let parsed: Result<(), String> = match arg.as_str() {
            "--n" => value().and_then(|v| {
                ns = v
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--n: {e}"))?;
                Ok(())
            }),
            "--workload" => value().map(|v| workloads = v.split(',').map(str::to_owned).collect()),
            "--rounds" => value().and_then(|v| {
                rounds = Some(v.parse::<usize>().map_err(|e| format!("--rounds: {e}"))?);
                Ok(())
            }),
            "--only" => value().and_then(|v| {
                let names: Vec<&str> = v.split(',').collect();
                if let Some(unknown) = names.iter().find(|n| !Startup::ALL.iter().any(|s| s.name() == **n)) {
                    return Err(format!(
                        "--only: no start-up contender `{unknown}` (one of {})",
                        Startup::ALL.map(Startup::name).join(", ")
                    ));
                }
                only = Startup::ALL
                    .into_iter()
                    .filter(|s| *s == Startup::Floor || names.contains(&s.name()))
                    .collect();
                Ok(())
            }),
            other => Err(format!("unknown argument {other}")),
        };
        if let Err(e) = parsed {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let server = match tests::postgres::server() {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: no PostgreSQL server: {e}; install postgresql or set MIGRATE_TEST_POSTGRES_URL");
            return ExitCode::FAILURE;
        }
    };
    let version = {
        let mut client =
            migrate_runtime::postgres::Client::connect(&server.url_for("postgres"), migrate_runtime::postgres::NoTls)
                .expect("connect");
        client
            .query_one("SHOW server_version", &[])
            .expect("version")
            .get::<_, String>(0)
    };
    println!("PostgreSQL {version}, a throw-away cluster on 127.0.0.1 (fsync=off)\n");
    for &n in &ns {
        let fixture = Fixture::new(n);
        for workload in &workloads {
            match workload.as_str() {
                "apply" => apply(&fixture, n, rounds.unwrap_or(if n >= 1000 { 5 } else { 11 })),
                "startup" => startup(&fixture, n, rounds.unwrap_or(51), &only),
                "roundtrips" => roundtrips(&fixture, n, server),
                other => {
                    eprintln!("error: unknown workload {other}\n{USAGE}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn apply(fixture: &Fixture, n: usize, rounds: usize) {
    let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut ratios: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..=rounds {
        let mut this: BTreeMap<&str, Duration> = BTreeMap::new();
        for tool in Apply::ALL {
            let db = tests::postgres::database("bench").expect("a database");
            let took = fixture.apply(tool, &db.url);
            this.insert(tool.name(), took);
        }
        if round == 0 {
            continue; // warm-up
        }
        for tool in Apply::ALL {
            let took = this[tool.name()];
            times.entry(tool.name()).or_default().push(took);
            ratios
                .entry(tool.name())
                .or_default()
                .push(took.as_secs_f64() / this[tool.floor().name()].as_secs_f64());
        }
    }
    println!("### Fresh apply, N = {n} ({rounds} rounds): connect + migrate + close\n");
    table(Apply::ALL.map(Apply::name).as_slice(), &times, &ratios, |name| {
        Apply::ALL
            .iter()
            .find(|t| t.name() == name)
            .map_or("", |t| t.floor().name())
    });
}

fn startup(fixture: &Fixture, n: usize, rounds: usize, only: &[Startup]) {
    let dbs: Vec<_> = only
        .iter()
        .map(|&who| {
            let db = tests::postgres::database("bench").expect("a database");
            fixture.prepare_startup(who, &db.url);
            (who, db)
        })
        .collect();
    let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut ratios: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 0..=rounds {
        let mut this: Vec<(Startup, Duration)> = (0..dbs.len())
            .map(|i| &dbs[(round + i) % dbs.len()])
            .map(|(who, db)| (*who, fixture.startup(*who, &db.url)))
            .collect();
        if round == 0 {
            continue;
        }
        this.sort_by_key(|(who, _)| only.iter().position(|s| s == who));
        let floor = this[0].1.as_secs_f64();
        for (who, took) in this {
            times.entry(who.name()).or_default().push(took);
            ratios.entry(who.name()).or_default().push(took.as_secs_f64() / floor);
        }
    }
    println!(
        "### No-op start-up, N = {n} ({rounds} rounds): connect + migrate (nothing pending) + `{}` + close\n",
        migrate_bench::APP_QUERY
    );
    let names: Vec<&str> = only.iter().map(|s| s.name()).collect();
    table(&names, &times, &ratios, |_| Startup::Floor.name());
}

fn table(
    names: &[&str],
    times: &BTreeMap<&str, Vec<Duration>>,
    ratios: &BTreeMap<&str, Vec<f64>>,
    floor_of: impl Fn(&str) -> &'static str,
) {
    println!("| contender | median | × its floor | floor |");
    println!("|---|---:|---:|---|");
    for name in names {
        let t = median(times[name].clone());
        let mut r = ratios[name].clone();
        r.sort_by(f64::total_cmp);
        let ratio = r.get(r.len() / 2).copied().unwrap_or(f64::NAN);
        println!(
            "| {name} | {:.2} ms | {ratio:.2}× | {} |",
            t.as_secs_f64() * 1e3,
            floor_of(name)
        );
    }
    println!();
}

fn roundtrips(fixture: &Fixture, n: usize, server: &'static tests::postgres::Server) {
    let probe = server.url_for("postgres");
    let upstream = {
        let config: migrate_runtime::postgres::Config = probe.parse().expect("url");
        let host = match &config.get_hosts()[0] {
            migrate_runtime::postgres::config::Host::Tcp(h) => h.clone(),
            migrate_runtime::postgres::config::Host::Unix(_) => "127.0.0.1".to_owned(),
        };
        format!("{host}:{}", config.get_ports().first().copied().unwrap_or(5432))
    };
    let proxy = Proxy::start(upstream);
    // The URL of a database through the proxy.
    let through = |url: &str| {
        let config: migrate_runtime::postgres::Config = url.parse().expect("url");
        format!(
            "postgres://{}@127.0.0.1:{}/{}",
            config.get_user().unwrap_or("postgres"),
            proxy.port,
            config.get_dbname().unwrap_or("postgres")
        )
    };
    println!("### Round trips, N = {n} (client Query and Sync messages, counted by a proxy)\n");
    println!(
        "| contender | fresh apply | per migration | start-up, nothing pending (with the app's query) | the first start-up after the apply |"
    );
    println!("|---|---:|---:|---:|---:|");
    let pairs = [
        (Apply::FloorPerMigration, Some(Startup::Floor)),
        (Apply::OursPerMigration, Some(Startup::Ours)),
        (Apply::OursGrouped, None),
        (Apply::Refinery, Some(Startup::Refinery)),
        (Apply::RefineryGrouped, None),
        (Apply::Sqlx, Some(Startup::Sqlx)),
    ];
    for (tool, startup) in pairs {
        let db = tests::postgres::database("bench").expect("a database");
        let url = through(&db.url);
        let before = proxy.count();
        fixture.apply(tool, &url);
        let applied = proxy.count() - before;
        let started = startup.map(|who| {
            let before = proxy.count();
            fixture.startup(who, &url);
            let first = proxy.count() - before;
            // Every later start-up: the one an app pays on each start.
            let before = proxy.count();
            fixture.startup(who, &url);
            (proxy.count() - before, first)
        });
        #[allow(clippy::cast_precision_loss)]
        let per = applied as f64 / n as f64;
        let (later, first) = started.map_or_else(
            || ("—".to_owned(), "—".to_owned()),
            |(later, first)| (later.to_string(), first.to_string()),
        );
        println!("| {} | {applied} | {per:.2} | {later} | {first} |", tool.name());
    }
    println!();
}
