//! The PostgreSQL contenders (feature `pg-peers`): cargo-migrate's
//! PostgreSQL backend, the floor (the `postgres` crate running the same SQL
//! with the fewest round trips and no checks), refinery (postgres driver)
//! and sqlx (postgres), on a throw-away cluster started by the test suite's
//! support code (`tests::postgres`), and a counting proxy for round trips.

use std::time::Duration;

use migrate_runtime::postgres::{Client, NoTls};
use migrate_runtime::{DriftPolicy, Migration, Migrator};
use refinery::Runner;
use sqlx::Connection as _;
use sqlx::postgres::PgConnection;

use crate::{APP_QUERY, Generated, time};

/// The fresh-apply contenders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apply {
    /// The postgres crate: per migration one simple-query message with
    /// `BEGIN; up; INSERT tracking row; COMMIT` — one round trip, no checks.
    FloorPerMigration,
    /// The same inside one transaction.
    FloorOneTransaction,
    /// `Migrator::apply_postgres`.
    OursPerMigration,
    /// `Migrator::grouped(true).apply_postgres`.
    OursGrouped,
    /// refinery's `Runner::run` on a `postgres::Client`.
    Refinery,
    /// refinery grouped.
    RefineryGrouped,
    /// sqlx's `Migrator::run` on a `PgConnection`.
    Sqlx,
}

impl Apply {
    /// Every contender, in the order of a round.
    pub const ALL: [Self; 7] = [
        Self::FloorPerMigration,
        Self::OursPerMigration,
        Self::Refinery,
        Self::Sqlx,
        Self::FloorOneTransaction,
        Self::OursGrouped,
        Self::RefineryGrouped,
    ];

    /// The name in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::FloorPerMigration => "pg-floor-per-migration",
            Self::FloorOneTransaction => "pg-floor-one-transaction",
            Self::OursPerMigration => "pg-ours-per-migration",
            Self::OursGrouped => "pg-ours-grouped",
            Self::Refinery => "pg-refinery",
            Self::RefineryGrouped => "pg-refinery-grouped",
            Self::Sqlx => "pg-sqlx",
        }
    }

    /// The floor this contender's ratio is taken against.
    pub fn floor(self) -> Self {
        match self {
            Self::FloorOneTransaction | Self::OursGrouped | Self::RefineryGrouped => Self::FloorOneTransaction,
            _ => Self::FloorPerMigration,
        }
    }
}

/// The start-up contenders: open, migrate (nothing pending), the app's
/// first query, close.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Startup {
    /// Connect, the query, close: no migration check.
    Floor,
    /// Ours, then the query.
    Ours,
    /// Ours with the drift check off (the history verified, the schema
    /// not compared), then the query.
    OursDriftOff,
    /// refinery, then the query.
    Refinery,
    /// sqlx, then the query.
    Sqlx,
    /// sqlx's own floor: its connection, the query, close.
    SqlxFloor,
    /// Connect, `SELECT 1`, the query, close: what one more round trip
    /// costs, the least any check that asks the server can add.
    FloorRoundTrip,
}

impl Startup {
    /// Every contender, in the order of a round.
    pub const ALL: [Self; 7] = [
        Self::Floor,
        Self::FloorRoundTrip,
        Self::Ours,
        Self::OursDriftOff,
        Self::Refinery,
        Self::Sqlx,
        Self::SqlxFloor,
    ];

    /// The name in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Floor => "pg-floor-connect-query-close",
            Self::Ours => "pg-ours+query",
            Self::OursDriftOff => "pg-ours+query-drift-off",
            Self::Refinery => "pg-refinery+query",
            Self::Sqlx => "pg-sqlx+query",
            Self::SqlxFloor => "pg-sqlx-connect-query-close",
            Self::FloorRoundTrip => "pg-floor+select-1",
        }
    }
}

/// A migration set in every contender's form.
pub struct Fixture {
    set: Vec<Generated>,
    ours: Vec<Migration>,
    refinery: Vec<refinery::Migration>,
    sqlx: sqlx::migrate::Migrator,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// The set as cargo-migrate's runtime sees it.
    pub fn ours(&self) -> &[Migration] {
        &self.ours
    }

    /// A new database named after `purpose`, migrated by ours and started
    /// once (so its head is written): where the start-up experiments run.
    ///
    /// # Panics
    ///
    /// When no PostgreSQL server can be had.
    pub fn migrated_database(&self, purpose: &str) -> tests::postgres::Database {
        let db = tests::postgres::database(purpose).expect("a database");
        self.apply(Apply::OursPerMigration, &db.url);
        self.startup(Startup::OursDriftOff, &db.url);
        db
    }

    /// The set of `n` generated migrations.
    ///
    /// # Panics
    ///
    /// When the files for sqlx cannot be written or read.
    pub fn new(n: usize) -> Self {
        let set = crate::generate(n);
        let ours = crate::ours(&set);
        let refinery = set
            .iter()
            .map(|m| {
                refinery::Migration::unapplied(&format!("V{}__{}", m.version, m.name), &m.up)
                    .expect("refinery migration")
            })
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        crate::write_dir(dir.path(), &set);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        let sqlx = runtime
            .block_on(sqlx::migrate::Migrator::new(dir.path().join("migrations")))
            .expect("sqlx migrator");
        Self {
            set,
            ours,
            refinery,
            sqlx,
            runtime,
            _dir: dir,
        }
    }

    /// Applies the whole set with `tool` to the (empty) database at `url`,
    /// timing connect + migrate + close.
    ///
    /// # Panics
    ///
    /// When the contender fails.
    pub fn apply(&self, tool: Apply, url: &str) -> Duration {
        match tool {
            Apply::FloorPerMigration | Apply::FloorOneTransaction => time(|| {
                let mut client = Client::connect(url, NoTls).expect("connect");
                floor_apply(&mut client, &self.set, tool == Apply::FloorOneTransaction);
                drop(client);
            }),
            Apply::OursPerMigration | Apply::OursGrouped => time(|| {
                let mut client = Client::connect(url, NoTls).expect("connect");
                Migrator::new(&self.ours)
                    .grouped(tool == Apply::OursGrouped)
                    .apply_postgres(&mut client)
                    .expect("ours");
                drop(client);
            }),
            Apply::Refinery | Apply::RefineryGrouped => time(|| {
                let mut client = Client::connect(url, NoTls).expect("connect");
                Runner::new(&self.refinery)
                    .set_grouped(tool == Apply::RefineryGrouped)
                    .run(&mut client)
                    .expect("refinery");
                drop(client);
            }),
            Apply::Sqlx => time(|| {
                self.runtime.block_on(async {
                    let mut conn = PgConnection::connect(url).await.expect("sqlx connect");
                    self.sqlx.run(&mut conn).await.expect("sqlx migrate");
                    conn.close().await.expect("sqlx close");
                });
            }),
        }
    }

    /// Brings the database at `url` up to date with the tool that
    /// `who` measures (outside any timing).
    pub fn prepare_startup(&self, who: Startup, url: &str) {
        let tool = match who {
            Startup::Floor | Startup::FloorRoundTrip | Startup::Ours | Startup::OursDriftOff => Apply::OursPerMigration,
            Startup::Refinery => Apply::Refinery,
            Startup::Sqlx | Startup::SqlxFloor => Apply::Sqlx,
        };
        self.apply(tool, url);
    }

    /// One start-up of `who` against its up-to-date database at `url`.
    ///
    /// # Panics
    ///
    /// When the contender fails or finds something pending.
    pub fn startup(&self, who: Startup, url: &str) -> Duration {
        match who {
            Startup::Floor => time(|| {
                let mut client = Client::connect(url, NoTls).expect("connect");
                app_query(&mut client);
            }),
            Startup::FloorRoundTrip => time(|| {
                let mut client = Client::connect(url, NoTls).expect("connect");
                client.simple_query("SELECT 1").expect("one round trip");
                app_query(&mut client);
            }),
            Startup::Ours | Startup::OursDriftOff => {
                // As the generated module's migrator() has it (computed by
                // the build), outside the timing.
                let digest = crate::code_digest(&self.ours);
                time(|| {
                    let mut client = Client::connect(url, NoTls).expect("connect");
                    let drift = if who == Startup::Ours {
                        DriftPolicy::Error
                    } else {
                        DriftPolicy::Off
                    };
                    let report = Migrator::new(&self.ours)
                        .__code_digest(digest)
                        .drift(drift)
                        .apply_postgres(&mut client)
                        .expect("ours");
                    assert!(report.is_empty(), "nothing pending");
                    app_query(&mut client);
                })
            }
            Startup::Refinery => time(|| {
                let mut client = Client::connect(url, NoTls).expect("connect");
                Runner::new(&self.refinery).run(&mut client).expect("refinery");
                app_query(&mut client);
            }),
            Startup::Sqlx | Startup::SqlxFloor => time(|| {
                self.runtime.block_on(async {
                    let mut conn = PgConnection::connect(url).await.expect("sqlx connect");
                    if who == Startup::Sqlx {
                        self.sqlx.run(&mut conn).await.expect("sqlx migrate");
                    }
                    let n: i64 = sqlx::query_scalar(APP_QUERY)
                        .fetch_one(&mut conn)
                        .await
                        .expect("the app's query");
                    assert_eq!(n, 0);
                    conn.close().await.expect("sqlx close");
                });
            }),
        }
    }
}

/// The floor: per migration one simple-query message (one round trip)
/// holding the up SQL and the tracking row, in its own transaction or all
/// in one.
fn floor_apply(client: &mut Client, set: &[Generated], one_transaction: bool) {
    client
        .batch_execute("CREATE TABLE floor_migrations (version bigint PRIMARY KEY, name text NOT NULL);")
        .expect("floor table");
    if one_transaction {
        client.batch_execute("BEGIN").expect("begin");
    }
    for m in set {
        let row = format!(
            "INSERT INTO floor_migrations (version, name) VALUES ({}, '{}');",
            m.version, m.name
        );
        let batch = if one_transaction {
            format!("{}{row}", m.up)
        } else {
            format!("BEGIN;\n{}{row}\nCOMMIT;", m.up)
        };
        client.batch_execute(&batch).expect("floor migration");
    }
    if one_transaction {
        client.batch_execute("COMMIT").expect("commit");
    }
}

fn app_query(client: &mut Client) {
    // The simple-query protocol: one round trip, as an app's first query
    // through a pool's cached statement costs.
    let rows = client.simple_query(APP_QUERY).expect("the app's query");
    assert!(!rows.is_empty());
}

/// A TCP proxy in front of the server that counts round trips: the client's
/// `Query` (`Q`) and `Sync` (`S`) messages, each of which the client sends
/// and then waits for the server's `ReadyForQuery`. Messages before the
/// start-up packet's reply (SSL negotiation, authentication) are not
/// counted.
pub mod proxy {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A running proxy.
    pub struct Proxy {
        /// `127.0.0.1:PORT` to connect to instead of the server.
        pub port: u16,
        count: Arc<AtomicU64>,
    }

    impl Proxy {
        /// Starts a proxy to `upstream` (`HOST:PORT`).
        ///
        /// # Panics
        ///
        /// When it cannot listen.
        pub fn start(upstream: String) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
            let port = listener.local_addr().expect("address").port();
            let count = Arc::new(AtomicU64::new(0));
            let counter = count.clone();
            std::thread::spawn(move || {
                for client in listener.incoming().flatten() {
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        continue;
                    };
                    let counter = counter.clone();
                    let (client_r, server_w) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                    std::thread::spawn(move || pipe_counting(client_r, server_w, &counter));
                    std::thread::spawn(move || {
                        let (mut server, mut client) = (server, client);
                        let _ = std::io::copy(&mut server, &mut client);
                        let _ = client.shutdown(std::net::Shutdown::Both);
                    });
                }
            });
            Self { port, count }
        }

        /// Round trips counted so far.
        pub fn count(&self) -> u64 {
            self.count.load(Ordering::SeqCst)
        }
    }

    /// Copies the client's bytes to the server, parsing its messages.
    fn pipe_counting(mut from: TcpStream, mut to: TcpStream, count: &AtomicU64) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        // Untyped packets first: SSLRequest / GSSENCRequest (8 bytes, then a
        // one-byte answer) and the start-up packet.
        let mut started = false;
        loop {
            let n = match from.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if to.write_all(&chunk[..n]).is_err() {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            loop {
                if !started {
                    if buf.len() < 8 {
                        break;
                    }
                    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                    let code = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                    if buf.len() < len {
                        break;
                    }
                    buf.drain(..len);
                    // 80877103: SSLRequest, 80877104: GSSENCRequest; anything
                    // else is the start-up packet.
                    if code != 80_877_103 && code != 80_877_104 {
                        started = true;
                    }
                    continue;
                }
                if buf.len() < 5 {
                    break;
                }
                let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize + 1;
                if buf.len() < len {
                    break;
                }
                if matches!(buf[0], b'Q' | b'S') {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                buf.drain(..len);
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Both);
    }
}
