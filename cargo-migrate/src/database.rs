//! Database URLs, and opening SQLite databases and connecting to
//! PostgreSQL servers with errors that say what to do.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use migrate_runtime::rusqlite::{self, Connection, ErrorCode, OpenFlags};

use crate::messages::note;

/// Where the database URL came from, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--database`.
    Flag,
    /// The `DATABASE_URL` environment variable.
    Env,
    /// `database` in `[package.metadata.migrate]`.
    Config,
    /// `DATABASE_URL` in a `.env` file.
    DotEnv,
}

impl Source {
    fn describe(self) -> &'static str {
        match self {
            Self::Flag => "from --database",
            Self::Env => "from DATABASE_URL",
            Self::Config => "from `database` in [package.metadata.migrate]",
            Self::DotEnv => "from DATABASE_URL in .env",
        }
    }
}

/// Where a database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `sqlite::memory:`: a database that lives as long as the command.
    Memory,
    /// A database file.
    File(PathBuf),
    /// A PostgreSQL database: its `postgres://` or `postgresql://` URL.
    Postgres(String),
}

/// What a `?mode=` option of an `sqlite:` URL allows (sqlx's names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    /// No `mode`: each command opens as it needs (`up` creates the file).
    #[default]
    Any,
    /// `mode=ro`: read only; commands that change the database refuse.
    ReadOnly,
    /// `mode=rw`: read and write, never create the file.
    ReadWrite,
    /// `mode=rwc`: read and write, creating the file (what `up` does anyway).
    Create,
}

/// A parsed database URL.
#[derive(Clone, Debug)]
pub struct Database {
    /// Where it came from.
    pub source: Source,
    /// The database it names.
    pub location: Location,
    /// What its URL's `?mode=` allows.
    pub access: Access,
}

/// How to open a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Only read it; a missing file is not created.
    ReadOnly,
    /// Read and write it; a missing file is not created.
    ReadWrite,
    /// Read and write it, creating the file when it does not exist.
    Create,
}

/// An open database.
pub struct Opened {
    /// The connection.
    pub conn: Connection,
    /// Whether this call created the file.
    pub created: bool,
}

impl Database {
    /// Parses `sqlite:PATH`, `sqlite://PATH`, `sqlite::memory:` or a plain
    /// path; a relative path is taken relative to `base`.
    ///
    /// In an `sqlite:` URL, percent-escapes are decoded (`my%20app.db`) and
    /// sqlx's `?mode=ro|rw|rwc|memory` is honoured; a plain path is taken
    /// as it is.
    ///
    /// # Errors
    ///
    /// An empty URL, an unsupported scheme (PostgreSQL included), a bad
    /// percent-escape, or an option other than `mode`.
    pub fn parse(url: &str, source: Source, base: &Path) -> Result<Self> {
        let from = source.describe();
        // Every message shows the URL without its password.
        let shown_url = redact(url);
        let (path, options) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let (path, options) = rest.split_once('?').unwrap_or((rest, ""));
            let path = percent_decode(path).map_err(|e| {
                anyhow!(
                    "the database URL `{shown_url}` ({from}) has {e}; write a `%` as %25, or give a plain file path"
                )
            })?;
            (path, options)
        } else if let Some(scheme) = scheme(url) {
            match scheme.to_ascii_lowercase().as_str() {
                "postgres" | "postgresql" => {
                    let (driver_url, _) = crate::tls::split_url(url, |_| None).map_err(|e| {
                        anyhow!("the database URL `{shown_url}` ({from}) is not a valid PostgreSQL URL: {e}")
                    })?;
                    if let Err(e) = driver_url.parse::<migrate_runtime::postgres::Config>() {
                        let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), |c| format!("{e}: {c}"));
                        bail!(
                            "the database URL `{shown_url}` ({from}) is not a valid PostgreSQL URL: {}; write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                            redact(&why)
                        );
                    }
                    return Ok(Self {
                        source,
                        location: Location::Postgres(url.to_owned()),
                        access: Access::Any,
                    });
                }
                _ => bail!(
                    "unknown database URL scheme `{scheme}:` in `{shown_url}` ({from}); use sqlite:PATH, sqlite::memory: or a file path"
                ),
            }
        } else {
            (url.to_owned(), "")
        };
        let mut access = Access::Any;
        let mut memory = path == ":memory:";
        for option in options.split('&').filter(|o| !o.is_empty()) {
            match option.split_once('=') {
                Some(("mode", "ro")) => access = Access::ReadOnly,
                Some(("mode", "rw")) => access = Access::ReadWrite,
                Some(("mode", "rwc")) => access = Access::Create,
                Some(("mode", "memory")) => memory = true,
                Some(("mode", other)) => bail!(
                    "the database URL `{shown_url}` ({from}) has mode={other}; the modes are ro, rw, rwc and memory"
                ),
                _ => bail!(
                    "the database URL `{shown_url}` ({from}) has the option `{}`, which is not supported; the only option is mode=ro|rw|rwc|memory: remove it",
                    redact(&format!("?{option}")).trim_start_matches('?')
                ),
            }
        }
        if path.is_empty() && !memory {
            bail!(
                "the database URL `{shown_url}` ({from}) names no file; use sqlite:PATH, sqlite::memory: or a file path"
            );
        }
        let location = if memory {
            Location::Memory
        } else {
            Location::File(base.join(path))
        };
        Ok(Self {
            source,
            location,
            access,
        })
    }

    /// The database as shown in messages: its path relative to the current
    /// directory, or `:memory:`.
    pub fn shown(&self) -> String {
        match &self.location {
            Location::Memory => ":memory:".to_owned(),
            Location::Postgres(url) => redact(url),
            Location::File(path) => crate::package::show(path),
        }
    }

    /// Opens the database, or returns `None` when its file does not exist
    /// and `mode` does not create it. Waits up to `lock_timeout` for another
    /// process's lock.
    ///
    /// # Errors
    ///
    /// When the file cannot be opened or created, is not an SQLite
    /// database, or stays locked.
    pub fn open(&self, mode: Mode, lock_timeout: Duration) -> Result<Option<Opened>> {
        let path = match &self.location {
            Location::Memory => {
                let conn = Connection::open_in_memory().map_err(|e| self.error(&e, lock_timeout))?;
                return Ok(Some(Opened { conn, created: false }));
            }
            Location::File(path) => path,
            Location::Postgres(_) => bail!(
                "this command works on SQLite databases only, and `{}` ({}) is a PostgreSQL database",
                self.shown(),
                self.source.describe()
            ),
        };
        let exists = path.exists();
        if self.access == Access::ReadOnly && mode != Mode::ReadOnly {
            bail!(
                "the database `{}` ({}) is opened read-only by its URL's ?mode=ro, and this command changes it; remove ?mode=ro (or use mode=rw)",
                self.shown(),
                self.source.describe()
            );
        }
        if !exists && self.access == Access::ReadWrite && mode == Mode::Create {
            bail!(
                "the database file {} does not exist, and its URL's ?mode=rw ({}) says not to create it; check the path, or use ?mode=rwc to create it",
                self.shown(),
                self.source.describe()
            );
        }
        if !exists && mode != Mode::Create {
            return Ok(None);
        }
        if path.is_dir() {
            bail!(
                "cannot open the database `{}` ({}): it is a directory; give the path of a database file",
                self.shown(),
                self.source.describe()
            );
        }
        if !exists && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
            bail!(
                "cannot create the database `{}` ({}): the directory `{}` does not exist; create it, or check the path",
                self.shown(),
                self.source.describe(),
                crate::package::show(parent)
            );
        }
        let flags = match mode {
            Mode::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
            Mode::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE,
            Mode::Create => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| self.error(&e, lock_timeout))?;
        if mode == Mode::ReadOnly {
            // A reader waits only while a writer commits (or holds an
            // exclusive lock), and says so at once.
            read_wait::install(&conn, self.shown(), lock_timeout).map_err(|e| self.error(&e, lock_timeout))?;
        } else {
            conn.busy_timeout(lock_timeout)
                .map_err(|e| self.error(&e, lock_timeout))?;
        }
        // SQLite reads the file lazily: read it now, so a file that is not a
        // database or is locked is reported as such rather than later.
        match probe(&conn) {
            Ok(()) => Ok(Some(Opened { conn, created: !exists })),
            Err(e) if mode == Mode::ReadOnly && is_hot_journal(&e) => {
                drop(conn);
                self.roll_back_interrupted_write(path, lock_timeout)?;
                self.open(mode, lock_timeout)
            }
            Err(e) => Err(self.error(&e, lock_timeout)),
        }
    }

    /// A process was killed while writing the database: its rollback
    /// journal is "hot", and a read-only connection cannot roll it back.
    /// A read-write connection does, as soon as it reads the file.
    fn roll_back_interrupted_write(&self, path: &Path, lock_timeout: Duration) -> Result<()> {
        let mut journal = path.as_os_str().to_owned();
        journal.push("-journal");
        let journal = crate::package::show(Path::new(&journal));
        let rolled_back = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|conn| {
            conn.busy_timeout(lock_timeout)?;
            probe(&conn)
        });
        match rolled_back {
            Ok(()) => {
                note!(
                    "a write to {} was interrupted (a process crashed or was killed while writing it); SQLite rolled it back from {journal}, so the database is as it was before that write",
                    self.shown()
                );
                Ok(())
            }
            Err(e) if is_hot_journal(&e) || e.sqlite_error_code() == Some(ErrorCode::ReadOnly) => bail!(
                "cannot read the database `{}` ({}): a write to it was interrupted (a process crashed or was killed while writing it), and its journal {journal} must be rolled back first, which needs write permission on the file and its directory; run this command (or the app) as a user who may write them",
                self.shown(),
                self.source.describe()
            ),
            Err(e) => Err(self.error(&e, lock_timeout)),
        }
    }

    /// The message for a failure to open or read the database.
    fn error(&self, e: &rusqlite::Error, lock_timeout: Duration) -> anyhow::Error {
        let from = self.source.describe();
        let shown = self.shown();
        let code = e.sqlite_error_code();
        if matches!(code, Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)) {
            return locked(&shown, lock_timeout);
        }
        // The runtime's one table of hints for SQLite's error codes.
        let hint = code
            .and_then(migrate_runtime::Error::hint_for)
            .unwrap_or("check the path and the file");
        anyhow!("cannot open the database `{shown}` ({from}): {e}; {hint}")
    }
}

impl Database {
    /// The PostgreSQL URL, when this is a PostgreSQL database.
    pub fn postgres_url(&self) -> Option<&str> {
        match &self.location {
            Location::Postgres(url) => Some(url),
            _ => None,
        }
    }

    /// Connects to the PostgreSQL database.
    ///
    /// # Errors
    ///
    /// A server that cannot be reached, a wrong password, a database that
    /// does not exist: each with what to do.
    pub fn connect(&self) -> Result<migrate_runtime::postgres::Client> {
        self.connect_with(&self.postgres_config()?)
    }

    /// The PostgreSQL connection settings: the URL's, with what it leaves
    /// out taken from the `PG*` environment variables as libpq reads them
    /// (see `crate::postgres_env`), and its TLS settings (`crate::tls`).
    ///
    /// # Errors
    ///
    /// A URL the driver rejects (already refused by [`Database::parse`]),
    /// or an environment variable that is not valid.
    pub fn postgres_config(&self) -> Result<PgConfig> {
        let url = self.postgres_url().unwrap_or_default();
        let env = |name: &str| std::env::var(name).ok();
        let (url, tls) = crate::tls::split_url(url, env)?;
        let mut config: migrate_runtime::postgres::Config = crate::postgres_env::url_with_env_port(&url, env)?
            .parse()
            .map_err(|e| anyhow!("the database URL `{}` is not a valid PostgreSQL URL: {e}", self.shown()))?;
        crate::postgres_env::fill(&mut config, env)?;
        config.ssl_mode(tls.mode.driver());
        Ok(PgConfig { config, tls })
    }

    /// Connects to the PostgreSQL server with `pg` (this database's
    /// settings, or another database's on the same server).
    ///
    /// # Errors
    ///
    /// As [`Database::connect`].
    pub fn connect_with(&self, pg: &PgConfig) -> Result<migrate_runtime::postgres::Client> {
        use migrate_runtime::postgres::NoTls;
        // The server's NOTICEs while migrations run reach the progress
        // lines (`Event::Notice`).
        let mut config = pg.config.clone();
        migrate_runtime::forward_notices(&mut config);
        let connected = match pg.tls.connector()? {
            None => config.connect(NoTls),
            Some(tls) => config.connect(tls),
        };
        connected.map_err(|e| {
            let db = e.as_db_error();
            let mut chain = String::new();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                chain.push_str(": ");
                chain.push_str(&c.to_string());
                cause = c.source();
            }
            let hint = match db.map(|d| (d.code().code(), d.message())) {
                Some(("3D000", _)) => "the database does not exist: create it (cargo migrate database create, or createdb), or check its name in the URL",
                Some(("28000", m)) if m.contains("no encryption") => {
                    "the server accepts only TLS connections from here: add sslmode=require to the URL (better: sslmode=verify-full with sslrootcert=PATH)"
                }
                Some(("28000", m)) if m.contains("client certificate") => {
                    "the server asks for a client certificate: give sslcert and sslkey in the URL (or PGSSLCERT and PGSSLKEY, or ~/.postgresql/postgresql.crt and postgresql.key)"
                }
                // With a client certificate, the server refuses one that is
                // not for the URL's user (its common name, or a mapping in
                // pg_ident.conf) and says only "authentication failed".
                Some(("28000", m)) if pg.tls.client.is_some() && m.contains("authentication failed") => {
                    "authentication failed with the client certificate: its common name (CN) must be the URL's user (or be mapped to it in the server's pg_ident.conf); check sslcert and the user in the URL"
                }
                Some(("28P01" | "28000", _)) => "authentication failed: check the user and the password in the URL (or PGUSER, PGPASSWORD, ~/.pgpass)",
                Some(_) => "check the URL",
                None if chain.contains("certificate") || chain.contains("Certificate") => {
                    "the server's TLS certificate was not accepted: check sslrootcert, and that the URL's host is a name the certificate is for (sslmode=verify-full), or use sslmode=verify-ca"
                }
                None if e.to_string().contains("TLS") || chain.contains("TLS") => {
                    "the server does not offer TLS: turn ssl on in the server, or use sslmode=prefer or disable"
                }
                None => "check that the server runs and that the URL's host and port are right",
            };
            let message = match db {
                Some(db) => db.message().to_owned(),
                None => format!("{e}{chain}"),
            };
            anyhow!(
                "cannot connect to the database `{}` ({}): {message}; {hint}",
                self.shown(),
                self.source.describe()
            )
        })
    }
}

/// A PostgreSQL database's connection settings: the driver's, and TLS.
#[derive(Clone, Debug)]
pub struct PgConfig {
    /// What the driver connects with.
    pub config: migrate_runtime::postgres::Config,
    /// How to verify the server.
    pub tls: crate::tls::Tls,
}

/// `s` with its `%XX` escapes decoded.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| format!("a `%` not followed by two hex digits at byte {i}"))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|e| e.to_string())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-escapes that are not UTF-8".to_owned())
}

/// Reads the file now (SQLite opens lazily).
fn probe(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get::<_, i64>(0))
        .map(drop)
}

/// Whether `e` is SQLite's "a hot journal needs rolling back, and this
/// connection cannot write" (`SQLITE_READONLY_ROLLBACK`).
fn is_hot_journal(e: &rusqlite::Error) -> bool {
    e.sqlite_error()
        .is_some_and(|e| e.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK)
}

/// Waiting, on a read-only connection, for another process that is writing.
///
/// In rollback-journal mode readers are blocked only while a writer commits
/// or holds an exclusive lock; a reader waits for that (up to the
/// command's lock timeout) and says so the moment it starts waiting. SQLite
/// takes a plain function as busy handler, so its state is process-wide:
/// a command opens one database.
mod read_wait {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use migrate_runtime::rusqlite::{self, Connection};

    use crate::messages::note;

    struct Wait {
        shown: String,
        limit: Duration,
        since: Option<Instant>,
        announced: bool,
    }

    static WAIT: Mutex<Option<Wait>> = Mutex::new(None);

    /// Makes `conn` wait up to `limit` for a writer, announcing it once.
    pub fn install(conn: &Connection, shown: String, limit: Duration) -> rusqlite::Result<()> {
        *WAIT.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Wait {
            shown,
            limit,
            since: None,
            announced: false,
        });
        conn.busy_handler(Some(busy))
    }

    /// SQLite's busy handler: `true` to try again, `false` to give up (SQLITE_BUSY).
    fn busy(attempt: i32) -> bool {
        let mut guard = WAIT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(wait) = guard.as_mut() else {
            return false;
        };
        if attempt == 0 {
            wait.since = Some(Instant::now());
            if !wait.announced {
                wait.announced = true;
                note!(
                    "{} is locked by another process that is writing to it; waiting up to {}s for the write to finish (--lock-timeout SECS) …",
                    wait.shown,
                    wait.limit.as_secs_f64().round()
                );
            }
        }
        let waited = wait.since.map_or(Duration::ZERO, |t| t.elapsed());
        let Some(left) = wait.limit.checked_sub(waited).filter(|d| !d.is_zero()) else {
            return false;
        };
        drop(guard);
        std::thread::sleep(left.min(Duration::from_millis(20)));
        true
    }
}

/// The message for a database that stayed locked.
pub fn locked(shown: &str, waited: Duration) -> anyhow::Error {
    anyhow!(
        "the database `{shown}` is locked by another process: waited {}s for it; make sure no other program holds a long transaction on it, or raise --lock-timeout",
        waited.as_secs_f64().round()
    )
}

/// `url` with its password replaced by `***`, to be shown in messages:
/// `postgres://alice:***@host/db`. Both places a URL carries a password are
/// covered: the user-info before `@` and a `password=` option.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(start) = out.find("://").map(|i| i + 3) {
        let end = out[start..].find(['/', '?', '#']).map_or(out.len(), |i| start + i);
        if let Some(at) = out[start..end].rfind('@').map(|i| start + i)
            && let Some(colon) = out[start..at].find(':').map(|i| start + i)
        {
            out.replace_range(colon + 1..at, "***");
        }
    }
    if let Some(query) = out.find('?') {
        let mut redacted = out[..=query].to_owned();
        let options: Vec<String> = out[query + 1..]
            .split('&')
            .map(|option| match option.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => option.to_owned(),
            })
            .collect();
        redacted.push_str(&options.join("&"));
        out = redacted;
    }
    out
}

/// The scheme of `url` (`postgres` in `postgres://…`), if it has one. A
/// single letter is a Windows drive (`C:\db\app.db`), not a scheme.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (scheme.len() > 1
        && first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<Location> {
        Database::parse(url, Source::Flag, Path::new("/pkg")).map(|d| d.location)
    }

    #[test]
    fn sqlite_urls() {
        let file = |p: &str| Location::File(PathBuf::from(p));
        assert_eq!(parse("sqlite:app.db").unwrap(), file("/pkg/app.db"));
        assert_eq!(parse("sqlite://app.db").unwrap(), file("/pkg/app.db"));
        assert_eq!(parse("sqlite:///tmp/app.db").unwrap(), file("/tmp/app.db"));
        assert_eq!(parse("sqlite:/tmp/app.db").unwrap(), file("/tmp/app.db"));
        assert_eq!(parse("data/app.db").unwrap(), file("/pkg/data/app.db"));
        assert_eq!(parse("/abs/app.db").unwrap(), file("/abs/app.db"));
        assert_eq!(parse("sqlite::memory:").unwrap(), Location::Memory);
        assert_eq!(parse("sqlite://:memory:").unwrap(), Location::Memory);
    }

    #[test]
    fn percent_escapes_and_modes() {
        let file = |p: &str| Location::File(PathBuf::from(p));
        assert_eq!(parse("sqlite:my%20app.db").unwrap(), file("/pkg/my app.db"));
        assert_eq!(parse("sqlite:///tmp/caf%C3%A9.db").unwrap(), file("/tmp/café.db"));
        assert_eq!(
            parse("my%20app.db").unwrap(),
            file("/pkg/my%20app.db"),
            "a plain path is literal"
        );
        let access = |url: &str| Database::parse(url, Source::Flag, Path::new("/pkg")).unwrap().access;
        assert_eq!(access("sqlite:app.db"), Access::Any);
        assert_eq!(access("sqlite:app.db?mode=ro"), Access::ReadOnly);
        assert_eq!(access("sqlite://app.db?mode=rw"), Access::ReadWrite);
        assert_eq!(access("sqlite:app.db?mode=rwc"), Access::Create);
        assert_eq!(parse("sqlite:app.db?mode=memory").unwrap(), Location::Memory);
        let err = |url: &str| parse(url).unwrap_err().to_string();
        assert!(err("sqlite:a%2.db").contains("a `%` not followed by two hex digits"));
        assert!(err("sqlite:a%ff.db").contains("not UTF-8"));
        assert!(err("sqlite:app.db?mode=wr").contains("has mode=wr; the modes are ro, rw, rwc and memory"));
        assert!(err("sqlite:app.db?cache=shared").contains("the option `cache=shared`, which is not supported"));
    }

    #[test]
    fn bad_urls() {
        let err = |url: &str| parse(url).unwrap_err().to_string();
        let pg = |url: &str| Database::parse(url, Source::Flag, Path::new("/pkg")).unwrap();
        assert_eq!(
            pg("postgres://localhost/db").location,
            Location::Postgres("postgres://localhost/db".to_owned())
        );
        assert_eq!(
            pg("postgresql://a:s3cret@h:5432/db").shown(),
            "postgresql://a:***@h:5432/db"
        );
        assert!(err("postgres://h:notaport/db").contains("is not a valid PostgreSQL URL"));
        assert!(err("mysql://localhost/db").starts_with("unknown database URL scheme `mysql:`"));
        assert!(err("sqlite:").contains("names no file"));
        assert!(err("").contains("names no file"));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://alice:s3cret@host/db"),
            "postgres://alice:***@host/db"
        );
        assert_eq!(
            redact("postgres://alice:p@ss:w@host:5432"),
            "postgres://alice:***@host:5432"
        );
        assert_eq!(redact("postgres://alice@host/db"), "postgres://alice@host/db");
        assert_eq!(
            redact("postgres://host/db?user=a&password=x&sslmode=require"),
            "postgres://host/db?user=a&password=***&sslmode=require"
        );
        assert_eq!(redact("sqlite:app.db"), "sqlite:app.db");
        assert_eq!(redact("sqlite://data/a:b@c.db"), "sqlite://data/a:b@c.db");
        for url in [
            "postgres://alice:s3cret@host:x/db",
            "mysql://bob:s3cret@h/x",
            "pg://h/x?password=s3cret&a=1",
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(!e.contains("s3cret") && e.contains("***"), "{e}");
        }
    }

    #[test]
    fn drive_letters_are_paths() {
        assert_eq!(scheme("C:\\db\\app.db"), None);
        assert_eq!(scheme("postgres://x"), Some("postgres"));
    }
}
