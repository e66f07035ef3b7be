//! A throw-away PostgreSQL cluster for the tests: one per test process,
//! started from the machine's binaries (`pg_config --bindir`) on a unix
//! socket in a fresh temporary directory and a free TCP port on
//! 127.0.0.1, trust authentication; one database per test. A watchdog
//! process stops and removes it once the test process is gone, however it
//! ended (even SIGKILL), and every start removes the clusters of test
//! processes that no longer exist. `MIGRATE_TEST_POSTGRES_URL` uses an
//! existing server instead.
//!
//! When neither is possible, [`database`] says so loudly on stderr and
//! returns `None` (the test then returns early); with
//! `MIGRATE_REQUIRE_POSTGRES=1` that is a panic instead.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use migrate_runtime::postgres::{Client, NoTls};

/// The prefix of the clusters' directories in the system temp dir.
const PREFIX: &str = "cargo-migrate-pg-";

/// The server the tests use.
#[derive(Debug)]
pub struct Server {
    /// URL of the maintenance database (`postgres`), used to create the
    /// tests' databases.
    admin: String,
    /// `127.0.0.1:PORT` of our cluster (empty for an existing server).
    base: String,
    /// The cluster's directory (its data, socket and log), when we run it.
    pub dir: Option<PathBuf>,
    /// The `pg_ctl` binary, when we run the cluster.
    pg_ctl: Option<PathBuf>,
}

/// One test's database, dropped when the test ends.
#[derive(Debug)]
pub struct Database {
    /// `postgres://…/NAME`.
    pub url: String,
    /// The database's name.
    pub name: String,
    server: &'static Server,
}

impl Database {
    /// A new connection to the database.
    pub fn client(&self) -> Client {
        Client::connect(&self.url, NoTls).unwrap_or_else(|e| panic!("connect to {}: {e}", self.url))
    }

    /// The server this database is on.
    pub fn server(&self) -> &'static Server {
        self.server
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut admin) = Client::connect(&self.server.admin, NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name));
        }
    }
}

impl Server {
    /// Stops the server at once (`pg_ctl stop -m immediate`), as a crash
    /// would; `false` when it is not ours to stop.
    pub fn stop_immediately(&self) -> bool {
        let (Some(dir), Some(pg_ctl)) = (&self.dir, &self.pg_ctl) else {
            return false;
        };
        as_postgres_user(pg_ctl)
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts the stopped server again.
    pub fn start(&self) -> bool {
        let (Some(dir), Some(pg_ctl)) = (&self.dir, &self.pg_ctl) else {
            return false;
        };
        start_cluster(pg_ctl, dir, port_of(&self.base)).is_ok()
    }
}

impl Server {
    /// The URL of database `name` on this server: the admin URL with
    /// another database (its user, password and parameters kept).
    pub fn url_for(&self, name: &str) -> String {
        let (url, query) = self
            .admin
            .split_once('?')
            .map_or((self.admin.as_str(), None), |(u, q)| (u, Some(q)));
        let scheme_end = url.find("://").map_or(0, |i| i + 3);
        let host_end = url[scheme_end..].find('/').map_or(url.len(), |i| scheme_end + i);
        let mut out = format!("{}/{name}", &url[..host_end]);
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(5432)
}

/// A new database for one test, named after it; `None` (said loudly) when
/// there is no server, a panic instead with `MIGRATE_REQUIRE_POSTGRES=1`.
pub fn database(test: &str) -> Option<Database> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let server = match server() {
        Ok(server) => server,
        Err(why) => {
            let message = format!(
                "PostgreSQL tests cannot run: {why}. Install PostgreSQL (apt-get install postgresql) or set MIGRATE_TEST_POSTGRES_URL"
            );
            assert!(
                std::env::var_os("MIGRATE_REQUIRE_POSTGRES").is_none_or(|v| v != "1"),
                "{message} (MIGRATE_REQUIRE_POSTGRES=1)"
            );
            // Straight to the process's stderr, past the test harness's
            // capture, so that a passing run still shows it.
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "\n!!!!! SKIPPED {test}: {message} !!!!!\n");
            return None;
        }
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let short: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect();
    let name = format!("t{}_{n}_{short}", std::process::id());
    let mut admin = Client::connect(&server.admin, NoTls).expect("connect to the test server");
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .expect("create the test database");
    let url = server.url_for(&name);
    Some(Database { url, name, server })
}

/// The server, started once per test process.
pub fn server() -> Result<&'static Server, String> {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    SERVER.get_or_init(start).as_ref().map_err(Clone::clone)
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("MIGRATE_TEST_POSTGRES_URL") {
        Client::connect(&url, NoTls).map_err(|e| format!("MIGRATE_TEST_POSTGRES_URL={url} does not connect: {e}"))?;
        return Ok(Server {
            admin: url,
            base: String::new(),
            dir: None,
            pg_ctl: None,
        });
    }
    remove_stale_clusters();
    start_own()
}

/// A cluster of its own, for a test that stops and starts its server
/// (the shared one serves the other tests meanwhile): stopped and removed
/// when dropped, or by the watchdog when the test process dies first.
#[derive(Debug)]
pub struct PrivateServer(Server);

impl std::ops::Deref for PrivateServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.0
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let (Some(dir), Some(pg_ctl)) = (&self.0.dir, &self.0.pg_ctl) {
            let _ = Command::new("sh").args(["-c", &stop_command(dir, pg_ctl)]).status();
        }
    }
}

/// Starts a [`PrivateServer`] from the machine's PostgreSQL binaries.
///
/// # Errors
///
/// When the binaries are missing or the cluster does not start.
pub fn private_server() -> Result<PrivateServer, String> {
    start_own().map(PrivateServer)
}

fn start_own() -> Result<Server, String> {
    let bindir = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .map_err(|e| format!("pg_config not found ({e})"))?;
    let bindir = PathBuf::from(String::from_utf8_lossy(&bindir.stdout).trim());
    let (initdb, pg_ctl) = (bindir.join("initdb"), bindir.join("pg_ctl"));
    if !initdb.exists() {
        return Err(format!(
            "{} does not exist (only the client is installed)",
            initdb.display()
        ));
    }
    let dir = std::env::temp_dir().join(format!("{PREFIX}{}-{}", std::process::id(), nanos()));
    std::fs::create_dir(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    if is_root() {
        // initdb and pg_ctl refuse root: the cluster belongs to nobody.
        let ok = Command::new("chown").arg("65534:65534").arg(&dir).status();
        if !ok.is_ok_and(|s| s.success()) {
            return Err(format!("cannot chown {} to uid 65534", dir.display()));
        }
    }
    let out = as_postgres_user(&initdb)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync", "-D"])
        .arg(dir.join("data"))
        .output()
        .map_err(|e| format!("run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    watch(&dir, &pg_ctl)?;
    let port = free_port()?;
    start_cluster(&pg_ctl, &dir, port)?;
    let base = format!("127.0.0.1:{port}");
    Ok(Server {
        admin: format!("postgres://postgres@{base}/postgres"),
        base,
        dir: Some(dir),
        pg_ctl: Some(pg_ctl),
    })
}

fn start_cluster(pg_ctl: &Path, dir: &Path, port: u16) -> Result<(), String> {
    let options = format!(
        "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
        dir.display()
    );
    let status = as_postgres_user(pg_ctl)
        .args(["start", "-w", "-t", "60", "-D"])
        .arg(dir.join("data"))
        .arg("-l")
        .arg(dir.join("log"))
        .arg("-o")
        .arg(options)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("run pg_ctl: {e}"))?;
    if !status.success() {
        let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
        return Err(format!("pg_ctl start failed: {}", log.trim()));
    }
    Ok(())
}

/// A process of its own group (so Ctrl-C of the test run does not reach
/// it) that waits for this test process to end, then stops the cluster
/// and removes its directory.
fn watch(dir: &Path, pg_ctl: &Path) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let stop = stop_command(dir, pg_ctl);
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop}",
        pid = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| format!("start the watchdog: {e}"))
}

fn stop_command(dir: &Path, pg_ctl: &Path) -> String {
    let setpriv = if is_root() {
        "setpriv --reuid=65534 --regid=65534 --clear-groups "
    } else {
        ""
    };
    format!(
        "{setpriv}'{}' stop -m immediate -w -D '{}/data' >/dev/null 2>&1; rm -rf '{}'",
        pg_ctl.display(),
        dir.display(),
        dir.display()
    )
}

/// The clusters of test processes that no longer run (killed before their
/// watchdog could act, or a watchdog killed too): stopped and removed.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let pg_ctl = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("pg_ctl"))
            .unwrap_or_else(|_| PathBuf::from("pg_ctl"));
        let _ = Command::new("sh")
            .args(["-c", &stop_command(&entry.path(), &pg_ctl)])
            .status();
    }
}

/// `program`, run as uid 65534 when we are root.
fn as_postgres_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("find a free port: {e}"))
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// Skips the test (loudly) when there is no PostgreSQL server: `let Some(db)
/// = tests::pg_database!() else { return };`
#[macro_export]
macro_rules! pg_database {
    () => {
        $crate::postgres::database(&{
            fn f() {}
            let name = ::std::any::type_name_of_val(&f);
            name.trim_end_matches("::f")
                .rsplit("::")
                .next()
                .unwrap_or(name)
                .to_owned()
        })
    };
}
