//! One check of `n` generated migrations, without a cache (`none`), saving
//! into an empty one (`save`), or after a first check (`hit`, `add`: the
//! cache of n - 1; `edit`: the cache of the whole set, then migration n / 2
//! edited): for callgrind's instruction counts of each. A third argument
//! `app` generates the set with `migrate_bench::generate_app`.
//!
//! ```text
//! savecost N [none|save|hit|add|edit] [tables|app]
//! ```
fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let mode = args.next().unwrap_or_else(|| "none".into());
    let set = if args.next().as_deref() == Some("app") {
        migrate_bench::generate_app(n)
    } else {
        migrate_bench::generate(n)
    };
    let pkg = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let config = migrate_build::Config::default();
    if mode == "add" || mode == "hit" || mode == "edit" {
        let first = if mode == "add" { &set[..n - 1] } else { &set[..] };
        migrate_bench::write_dir(pkg.path(), first);
        migrate_build::check_incremental(pkg.path(), &config, None, Some(cache.path())).unwrap();
    }
    migrate_bench::write_dir(pkg.path(), &set);
    if mode == "edit" {
        let middle = &set[n / 2];
        let path = pkg
            .path()
            .join("migrations")
            .join(format!("{}.up.sql", migrate_bench::stem(middle)));
        std::fs::write(path, format!("{}-- edited\n", middle.up)).unwrap();
    }
    let cache = (mode != "none").then_some(cache.path());
    timed(pkg.path(), &config, cache);
}

#[inline(never)]
fn timed(pkg: &std::path::Path, config: &migrate_build::Config, cache: Option<&std::path::Path>) {
    let c = migrate_build::check_incremental(pkg, config, None, cache).unwrap();
    eprintln!("cached {}", c.cached);
}
