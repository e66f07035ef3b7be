//! The benchmark harness: cargo-migrate against plain rusqlite (the floor),
//! refinery, rusqlite_migration and sqlx, on generated migration sets.
//!
//! ```text
//! cargo run --release -p migrate-bench --features peers --bin peers -- \
//!     [--n 100,1000] [--workload disk,memory,startup,build,testdb,cli] [--rounds R] \
//!     [--only NAME,NAME…] [--once] [--dir PATH] [--shape tables|app] [--bin PATH] [--clock wall|cpu] [--warmup W]
//! ```
//!
//! `--shape` picks the generated set: `tables` (the default: a new table
//! per migration, [`migrate_bench::generate`]) or `app` (a pool of 200
//! tables, then columns, indexes, views, triggers, seed rows and rebuilds,
//! [`migrate_bench::generate_app`]). The `cli` workload runs the
//! `cargo-migrate` binary next to this one (or `--bin PATH`); it is not in
//! the default list of workloads. `--clock cpu` times CPU time (this
//! thread's, and the reaped child processes') instead of wall time, for a
//! machine whose cores are shared with other work
//! ([`migrate_bench::use_cpu_clock`]; not for sqlx, whose worker thread it
//! misses).
//!
//! Every round runs each selected contender once, the order rotated by one
//! each round (A B C D, B C D A, …: no contender always runs first or
//! right after the same one; with a fixed order the floor, always first,
//! came out slower than the contenders), after one warm-up round
//! (`--warmup W`: W of them); the table shows each contender's median and
//! its ratio to the median of its floor from the same run.
//! `--once` runs each selected contender once, without warm-up, and prints
//! its time: for `strace -f -c -e trace=fsync,fdatasync` or a profiler.
//! Databases go to a temporary directory, or to `--dir`, where the start-up
//! workload's up-to-date databases are also kept and reused by later runs
//! (so a profiled `--once` run does not pay their setup).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use migrate_bench::cli::{Cli, CliFixture};
use migrate_bench::peers::{Apply, Fixture, Place, Startup};
use migrate_bench::testdb::TestDb;
use migrate_bench::{BuildFixture, BuildStep, Paths, Shape, median, remove_db};

const USAGE: &str = "usage: peers [--n 100,1000] [--workload disk,memory,startup,build,testdb,cli] [--rounds R] [--only NAME,…] [--once] [--dir PATH] [--shape tables|app] [--bin PATH] [--clock wall|cpu] [--warmup W]";

/// The command line.
struct Args {
    ns: Vec<usize>,
    workloads: Vec<Workload>,
    rounds: Option<usize>,
    only: Option<Vec<String>>,
    once: bool,
    dir: Option<PathBuf>,
    shape: Shape,
    /// Rounds run before the counted ones.
    warmup: usize,
    /// The `cargo-migrate` binary of the `cli` workload.
    bin: Option<PathBuf>,
}

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    Disk,
    Memory,
    Startup,
    Build,
    TestDb,
    Cli,
}

impl Workload {
    const ALL: [Self; 6] = [
        Self::Disk,
        Self::Memory,
        Self::Startup,
        Self::Build,
        Self::TestDb,
        Self::Cli,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Disk => "disk",
            Self::Memory => "memory",
            Self::Startup => "startup",
            Self::Build => "build",
            Self::TestDb => "testdb",
            Self::Cli => "cli",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Disk => "Fresh apply, on disk (open + migrate + close, a new file each time)",
            Self::Memory => "Fresh apply, in memory (open + migrate + close)",
            Self::Startup => {
                "No-op start-up, on disk: open + migrate (nothing pending) + `SELECT count(*) FROM t1` + close"
            }
            Self::Build => "Build-time validation (migrate-build) against SQLite running every up once in memory",
            Self::TestDb => {
                "A migrated database per test (make it + `SELECT count(*) FROM t1` + close), against a fresh apply in memory"
            }
            Self::Cli => {
                "`cargo migrate check` and `status` as processes, against SQLite running the ups and reading the files and rows"
            }
        }
    }

    /// Rounds when `--rounds` is not given: the slow workloads get fewer.
    fn default_rounds(self) -> usize {
        match self {
            Self::Disk => 11,
            Self::Memory | Self::Build | Self::TestDb | Self::Cli => 21,
            Self::Startup => 51,
        }
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        ns: vec![100, 1000],
        workloads: Workload::ALL.into_iter().filter(|w| *w != Workload::Cli).collect(),
        rounds: None,
        only: None,
        once: false,
        dir: None,
        shape: Shape::Tables,
        warmup: 1,
        bin: None,
    };
    let mut it = std::env::args().skip(1);
    let list = |v: Option<String>, flag: &str| -> Result<Vec<String>, String> {
        let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
        Ok(v.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect())
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--n" => {
                args.ns = list(it.next(), "--n")?
                    .iter()
                    .map(|s| s.replace('_', "").parse().map_err(|_| format!("bad N `{s}`")))
                    .collect::<Result<_, _>>()?;
            }
            "--workload" => {
                args.workloads = list(it.next(), "--workload")?
                    .iter()
                    .map(|s| {
                        Workload::ALL.into_iter().find(|w| w.name() == s).ok_or_else(|| {
                            format!("unknown workload `{s}` (disk, memory, startup, build, testdb, cli)")
                        })
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--rounds" => {
                let v = it.next().ok_or("--rounds needs a value")?;
                args.rounds = Some(v.parse().map_err(|_| format!("bad rounds `{v}`"))?);
            }
            "--only" => args.only = Some(list(it.next(), "--only")?),
            "--once" => args.once = true,
            "--dir" => args.dir = Some(it.next().ok_or("--dir needs a value")?.into()),
            "--clock" => match it.next().as_deref() {
                Some("wall") => {}
                Some("cpu") => migrate_bench::use_cpu_clock(),
                other => return Err(format!("--clock needs `wall` or `cpu`, not {other:?}")),
            },
            "--warmup" => {
                let v = it.next().ok_or("--warmup needs a value")?;
                args.warmup = v.parse().map_err(|_| format!("bad warm-up rounds `{v}`"))?;
            }
            "--bin" => args.bin = Some(it.next().ok_or("--bin needs a value")?.into()),
            "--shape" => {
                let v = it.next().ok_or("--shape needs a value")?;
                args.shape = Shape::ALL
                    .into_iter()
                    .find(|s| s.name() == v)
                    .ok_or_else(|| format!("unknown shape `{v}` (tables, app)"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if let Some(only) = &args.only {
        let known: Vec<&str> = Apply::ALL
            .iter()
            .map(|a| a.name())
            .chain(Startup::ALL.iter().map(|s| s.name()))
            .chain(BuildStep::ALL.iter().map(|b| b.name()))
            .chain(TestDb::ALL.iter().map(|t| t.name()))
            .chain(Cli::ALL.iter().map(|c| c.name()))
            .collect();
        if let Some(bad) = only.iter().find(|o| !known.contains(&o.as_str())) {
            return Err(format!("unknown contender `{bad}`; known: {}", known.join(", ")));
        }
    }
    Ok(args)
}

/// One contender of a workload: its name, its floor's name, and a closure
/// that runs it once and returns the timed part.
struct Contender<'a> {
    name: &'static str,
    floor: &'static str,
    run: Box<dyn FnMut() -> Duration + 'a>,
}

/// Every round's time per contender name and N, for one workload.
#[derive(Default)]
struct Results {
    order: Vec<(&'static str, &'static str)>,
    times: BTreeMap<(&'static str, usize), Vec<Duration>>,
}

impl Results {
    fn add(&mut self, name: &'static str, floor: &'static str, n: usize, times: Vec<Duration>) {
        if !self.order.iter().any(|(c, _)| *c == name) {
            self.order.push((name, floor));
        }
        self.times.insert((name, n), times);
    }

    fn median(&self, name: &str, n: usize) -> Option<Duration> {
        self.times
            .iter()
            .find(|((c, k), _)| *c == name && *k == n)
            .map(|(_, t)| median(t.clone()))
    }

    /// The median over rounds of `name`'s time divided by its floor's time
    /// in the same round: a slow spell of the machine (other builds) hits
    /// both sides of a pair alike.
    fn ratio(&self, name: &str, floor: &str, n: usize) -> Option<f64> {
        let get = |c: &str| self.times.iter().find(|((x, k), _)| *x == c && *k == n).map(|(_, t)| t);
        let (a, b) = (get(name)?, get(floor)?);
        let mut ratios: Vec<f64> = a
            .iter()
            .zip(b)
            .map(|(x, y)| x.as_secs_f64() / y.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios.get(ratios.len() / 2).copied()
    }
}

fn selected(args: &Args, name: &str) -> bool {
    args.only.as_ref().is_none_or(|only| only.iter().any(|o| o == name))
}

/// Runs the contenders alternately for `rounds` rounds after `warmup`
/// rounds, and records their medians.
fn measure(contenders: &mut [Contender<'_>], (warmup, rounds): (usize, usize), n: usize, results: &mut Results) {
    for _ in 0..warmup {
        for c in contenders.iter_mut() {
            let _ = (c.run)();
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); contenders.len()];
    let k = contenders.len();
    for round in 0..rounds {
        eprint!("\r  N = {n}: round {}/{rounds}", round + 1);
        for i in (0..k).map(|i| (round + i) % k) {
            times[i].push((contenders[i].run)());
        }
    }
    eprintln!();
    for (c, t) in contenders.iter().zip(times) {
        results.add(c.name, c.floor, n, t);
    }
}

fn fmt(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

fn print_table(workload: Workload, shape: Shape, ns: &[usize], rounds: usize, results: &Results) {
    println!("\n### {} (shape `{}`)\n", workload.title(), shape.name());
    println!(
        "Medians of {rounds} alternated rounds; × = median over the rounds of the time divided by the floor's time in the same round.\n"
    );
    let mut header = String::from("| contender | floor |");
    let mut rule = String::from("|---|---|");
    for n in ns {
        header.push_str(&format!(" N = {n} | × |"));
        rule.push_str("---:|---:|");
    }
    println!("{header}\n{rule}");
    for &(name, floor) in &results.order {
        let mut line = format!("| {name} | {} |", if name == floor { "—" } else { floor });
        for &n in ns {
            match results.median(name, n) {
                Some(d) => {
                    let ratio = results
                        .ratio(name, floor, n)
                        .map_or_else(|| "—".to_owned(), |r| format!("{r:.2}"));
                    line.push_str(&format!(" {} | {ratio} |", fmt(d)));
                }
                None => line.push_str(" — | — |"),
            }
        }
        println!("{line}");
    }
}

fn run_workload(args: &Args, workload: Workload, dir: &std::path::Path) {
    let rounds = args.rounds.unwrap_or(workload.default_rounds());
    let mut results = Results::default();
    if !args.once {
        eprintln!("{}:", workload.name());
    }
    for &n in &args.ns {
        let report = |contenders: &mut Vec<Contender<'_>>, results: &mut Results| {
            if args.once {
                for c in contenders.iter_mut() {
                    let d = (c.run)();
                    println!("{} {} N={n}: {}", workload.name(), c.name, fmt(d));
                }
            } else {
                measure(contenders, (args.warmup, rounds), n, results);
            }
        };
        match workload {
            Workload::Disk | Workload::Memory => {
                let fixture = Fixture::new(args.shape, n);
                let fixture = &fixture;
                let mut contenders: Vec<Contender<'_>> = Apply::ALL
                    .into_iter()
                    .filter(|a| selected(args, a.name()))
                    .map(|tool| {
                        let run: Box<dyn FnMut() -> Duration> = if workload == Workload::Disk {
                            let mut paths = Paths::new(dir, tool.name());
                            Box::new(move || {
                                let path = paths.fresh();
                                let d = fixture.apply(tool, Place::Disk(&path));
                                remove_db(&path);
                                d
                            })
                        } else {
                            Box::new(move || fixture.apply(tool, Place::Memory))
                        };
                        Contender {
                            name: tool.name(),
                            floor: tool.floor().name(),
                            run,
                        }
                    })
                    .collect();
                report(&mut contenders, &mut results);
            }
            Workload::Startup => {
                let fixture = Fixture::new(args.shape, n);
                let fixture = &fixture;
                let who: Vec<Startup> = Startup::ALL.into_iter().filter(|s| selected(args, s.name())).collect();
                let dbs = fixture.startup_databases(dir, args.dir.is_some(), &who);
                let dbs = &dbs;
                let mut contenders: Vec<Contender<'_>> = who
                    .into_iter()
                    .map(|who| Contender {
                        name: who.name(),
                        floor: Startup::Floor.name(),
                        run: Box::new(move || fixture.startup(who, dbs)),
                    })
                    .collect();
                report(&mut contenders, &mut results);
            }
            Workload::Build => {
                let fixture = BuildFixture::new(args.shape.generate(n));
                let fixture = &fixture;
                let mut contenders: Vec<Contender<'_>> = BuildStep::ALL
                    .into_iter()
                    .filter(|b| selected(args, b.name()))
                    .map(|step| Contender {
                        name: step.name(),
                        floor: BuildStep::Floor.name(),
                        run: Box::new(move || fixture.run(step)),
                    })
                    .collect();
                report(&mut contenders, &mut results);
            }
            Workload::Cli => {
                let bin = args.bin.clone().unwrap_or_else(|| {
                    let me = std::env::current_exe().expect("this program's path");
                    me.with_file_name(format!("cargo-migrate{}", std::env::consts::EXE_SUFFIX))
                });
                let fixture = CliFixture::new(args.shape.generate(n), bin);
                let fixture = &fixture;
                let mut contenders: Vec<Contender<'_>> = Cli::ALL
                    .into_iter()
                    .filter(|c| selected(args, c.name()))
                    .map(|who| Contender {
                        name: who.name(),
                        floor: who.floor().name(),
                        run: Box::new(move || fixture.run(who)),
                    })
                    .collect();
                report(&mut contenders, &mut results);
            }
            Workload::TestDb => {
                let fixture = Fixture::new(args.shape, n);
                let fixture = &fixture;
                let ready = fixture.ready_database(dir);
                let ready = &ready;
                let mut contenders: Vec<Contender<'_>> = TestDb::ALL
                    .into_iter()
                    .filter(|t| selected(args, t.name()))
                    .map(|who| {
                        let mut paths = Paths::new(dir, who.name());
                        Contender {
                            name: who.name(),
                            floor: TestDb::OursFreshApply.name(),
                            run: Box::new(move || {
                                let path = paths.fresh();
                                let d = fixture.test_db(who, &path, ready);
                                remove_db(&path);
                                d
                            }),
                        }
                    })
                    .collect();
                report(&mut contenders, &mut results);
            }
        }
    }
    if !args.once && !results.order.is_empty() {
        print_table(workload, args.shape, &args.ns, rounds, &results);
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).expect("create --dir");
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_owned()
        }
    };
    for workload in args.workloads.clone() {
        run_workload(&args, workload, &dir);
    }
    ExitCode::SUCCESS
}
