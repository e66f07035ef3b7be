//! Test support for cargo-migrate's end-to-end tests: the real binaries,
//! and throw-away cargo packages with a real `build.rs` ("testboxes") that
//! share one target directory, so SQLite is compiled once.

pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

/// The target directory the tests run from (`target/`).
pub fn target_dir() -> PathBuf {
    // The test executable is target/<profile>/deps/<name>.
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .expect("the test executable is in target/<profile>/deps")
        .to_path_buf()
}

/// The directory of the profile the tests were built with
/// (`target/debug`, `target/release`, …).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(2)
        .expect("the test executable is in target/<profile>/deps")
        .to_path_buf()
}

/// Builds the workspace's binaries once per test run, with the profile the
/// tests were built with, and returns the path of `name` (`cargo-migrate`
/// or `example-app`).
///
/// Why not `CARGO_BIN_EXE_<name>`: cargo sets it only for the binaries of
/// the package under test (the `tests` crate's own `migrate-worker`), and
/// depending on another package's binary (artifact dependencies) is still
/// unstable. So they are built here, into the same target directory and
/// profile, which cargo has mostly done already for `cargo test`.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = profile_dir();
    BUILT.get_or_init(|| {
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
        };
        let out = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--profile", &profile])
            .args(["-p", "cargo-migrate", "-p", "example-app"])
            .current_dir(workspace_dir())
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "cargo build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A package name no other testbox of any test process uses now: the
/// process id and a counter.
fn unique_name() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// The target directory that every testbox shares.
pub fn testbox_target() -> PathBuf {
    target_dir().join("testbox")
}

/// A scratch directory under the target directory.
pub fn scratch() -> tempfile::TempDir {
    let root = target_dir().join("tmp");
    std::fs::create_dir_all(&root).expect("create target/tmp");
    tempfile::Builder::new()
        .prefix("cargo-migrate-test-")
        .tempdir_in(root)
        .expect("create a scratch directory")
}

/// A throw-away cargo package: `Cargo.toml` (its own workspace, path
/// dependencies on this workspace's crates, the workspace's `Cargo.lock`),
/// a `build.rs` calling `migrate_build::build()`, a `src/main.rs` that
/// applies the generated module, and an empty `migrations/`.
pub struct Package {
    dir: tempfile::TempDir,
}

/// The `main.rs` of a testbox: applies the migrations to the database named
/// by its first argument (default `app.db`), prints the report, then the
/// generated `Version::LATEST` and tables.
pub const MAIN_RS: &str = r#"mod migrations {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "app.db".to_owned());
    let mut conn = migrate_runtime::rusqlite::Connection::open(&path).expect("open");
    match migrations::apply(&mut conn) {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    println!("migrations: {}", migrations::MIGRATIONS.len());
}
"#;

impl Package {
    /// A package with `build.rs`, `src/main.rs` ([`MAIN_RS`]) and an empty
    /// `migrations/`, named `testbox-<n>` with a number of its own.
    pub fn new() -> Self {
        Self::named(&unique_name())
    }

    fn unnamed() -> Self {
        let p = Self::bare();
        p.write(
            "build.rs",
            "fn main() -> Result<(), migrate_build::Error> {\n    migrate_build::build()?;\n    Ok(())\n}\n",
        );
        p.write("src/main.rs", MAIN_RS);
        std::fs::create_dir_all(p.path().join("migrations")).expect("create migrations/");
        p
    }

    /// [`Package::new`] with a package name of its own, `testbox-{name}`.
    /// Testboxes share a target directory, and cargo gives root packages
    /// of one name one build-script output directory and one binary: tests
    /// that run at the same time need different names.
    pub fn named(name: &str) -> Self {
        let p = Self::unnamed();
        let manifest = p.read("Cargo.toml");
        p.write(
            "Cargo.toml",
            manifest.replacen("name = \"testbox\"", &format!("name = \"testbox-{name}\""), 1),
        );
        p
    }

    /// The package's name (`testbox-…`), as cargo prints it in
    /// `error: testbox-…@0.0.0: …` lines of a failed build script.
    pub fn name(&self) -> String {
        let manifest = self.read("Cargo.toml");
        manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .and_then(|rest| rest.strip_suffix('"'))
            .expect("the manifest names the package")
            .to_owned()
    }

    /// The package's binary after [`build`](Self::build).
    pub fn binary(&self) -> PathBuf {
        let name = self.name();
        testbox_target()
            .join("debug")
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    }

    /// A package with only `Cargo.toml` (with the dependencies) and a hello-world `src/main.rs`.
    pub fn bare() -> Self {
        let dir = scratch();
        let ws = workspace_dir();
        let manifest = format!(
            r#"[package]
name = "testbox"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
migrate-runtime = {{ path = {runtime:?} }}

[build-dependencies]
migrate-build = {{ path = {build:?} }}
"#,
            runtime = ws.join("migrate-runtime").display().to_string(),
            build = ws.join("migrate-build").display().to_string(),
        );
        let p = Self { dir };
        p.write("Cargo.toml", &manifest);
        p.write("src/main.rs", "fn main() {\n    println!(\"hello\");\n}\n");
        std::fs::copy(ws.join("Cargo.lock"), p.path().join("Cargo.lock")).expect("copy Cargo.lock");
        p
    }

    /// A PostgreSQL app, `name`d: the runtime without SQLite and with
    /// `runtime_features`, `dependencies` (more `[dependencies]` lines),
    /// migrate-build with its `postgres` feature, `[package.metadata.migrate]`
    /// with a `postgres://` database and `metadata` (more lines), and a
    /// `build.rs` calling `migrate_build::build()`; the caller writes
    /// `src/main.rs` and the migrations.
    pub fn postgres(name: &str, runtime_features: &str, dependencies: &str, metadata: &str) -> Self {
        let p = Self::bare();
        let ws = workspace_dir();
        p.write(
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
migrate-runtime = {{ path = {runtime:?}, default-features = false, features = [{runtime_features}] }}
{dependencies}
[build-dependencies]
migrate-build = {{ path = {build:?}, features = ["postgres"] }}

[package.metadata.migrate]
database = "postgres://localhost/app"
{metadata}"#,
                runtime = ws.join("migrate-runtime").display().to_string(),
                build = ws.join("migrate-build").display().to_string(),
            ),
        );
        p.write(
            "build.rs",
            "fn main() -> Result<(), migrate_build::Error> {\n    migrate_build::build()?;\n    Ok(())\n}\n",
        );
        p
    }

    /// The package directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating directories), relative to the package.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directory");
        }
        std::fs::write(&path, contents).expect("write file");
    }

    /// Reads a file relative to the package.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).expect("read file")
    }

    /// Runs `cargo ARGS` in the package with the shared target directory,
    /// offline (the workspace has fetched every crate).
    pub fn cargo(&self, args: &[&str]) -> Output {
        // `--offline` right after the subcommand, before any `--`.
        let (command, rest) = args.split_first().expect("a cargo subcommand");
        Command::new(env!("CARGO"))
            .arg(command)
            .arg("--offline")
            .args(rest)
            .current_dir(self.path())
            .env("CARGO_TARGET_DIR", testbox_target())
            .env_remove("RUSTFLAGS")
            .output()
            .expect("run cargo")
    }

    /// [`cargo`](Self::cargo) with environment variables set.
    pub fn cargo_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let (command, rest) = args.split_first().expect("a cargo subcommand");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.arg(command)
            .arg("--offline")
            .args(rest)
            .current_dir(self.path())
            .env("CARGO_TARGET_DIR", testbox_target())
            .env_remove("RUSTFLAGS");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.output().expect("run cargo")
    }

    /// `cargo build`, returning (success, stderr).
    pub fn build(&self) -> (bool, String) {
        let out = self.cargo(&["build", "--quiet"]);
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// `cargo run` with `args` after `--`, returning the output.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "--quiet", "--"];
        all.extend_from_slice(args);
        self.cargo(&all)
    }

    /// `cargo-migrate migrate ARGS…` (as cargo runs it) in the package directory.
    pub fn migrate(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(bin("cargo-migrate"));
        cmd.arg("migrate")
            .current_dir(self.path())
            .env_remove("DATABASE_URL")
            .env("NO_COLOR", "1");
        cmd
    }
}

impl Default for Package {
    fn default() -> Self {
        Self::new()
    }
}

/// The versions recorded in `_migrations`, oldest first.
pub fn applied_versions(conn: &migrate_runtime::rusqlite::Connection) -> Vec<i64> {
    let mut stmt = conn
        .prepare("SELECT version FROM _migrations ORDER BY version")
        .expect("read _migrations");
    stmt.query_map([], |r| r.get(0))
        .expect("read _migrations")
        .collect::<Result<_, _>>()
        .expect("read _migrations")
}

/// The tables of the database, without SQLite's own, by name.
pub fn user_tables(conn: &migrate_runtime::rusqlite::Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .expect("read the schema");
    stmt.query_map([], |r| r.get(0))
        .expect("read the schema")
        .collect::<Result<_, _>>()
        .expect("read the schema")
}

/// Writes `files` (name, contents) into a new directory and returns it.
pub fn migrations_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = scratch();
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).expect("write migration");
    }
    dir
}

/// The opt-out for machines without rustfmt or clippy (a minimal
/// toolchain): the checks that use them are skipped, said on stderr.
pub const NO_TOOL_CHECKS: &str = "MIGRATE_TEST_NO_TOOL_CHECKS";

/// A tool a test needs is missing: a failure naming it and the opt-out,
/// or, with [`NO_TOOL_CHECKS`] set, a skip said on stderr.
///
/// # Panics
///
/// Unless [`NO_TOOL_CHECKS`] is set.
pub fn tool_missing(tool: &str, cause: &str) {
    let opted_out = std::env::var_os(NO_TOOL_CHECKS).is_some_and(|v| !v.is_empty() && v != "0");
    assert!(
        opted_out,
        "{tool} is not available ({cause}): install it (rustup component add {tool}), or set {NO_TOOL_CHECKS}=1 to skip the checks that use it"
    );
    eprintln!("skipped ({NO_TOOL_CHECKS} is set): {tool} is not available: {cause}");
}
