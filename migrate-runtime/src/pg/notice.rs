//! The server's NOTICE, WARNING and INFO messages sent while a migration's
//! script runs (`RAISE NOTICE`, "table … does not exist, skipping"), as
//! [`Event::Notice`](crate::Event::Notice).
//!
//! The sync driver hands them to a callback set on its [`Config`] when the
//! connection is made (by default it logs them). [`forward_notices`] sets
//! ours; the driver runs it on the thread that waits for the server, which
//! is the thread running the migration, so the messages are collected per
//! thread while a script runs and reported by the apply loop afterwards.
//!
//! With `tokio-postgres` the app runs the connection's `Connection` half
//! itself, on any thread: [`NoticeForwarder::drive`] runs it instead,
//! collecting the notices for the migrator given the same forwarder
//! ([`Migrator::notices_from`](crate::Migrator::notices_from)). The server
//! sends a script's notices before the reply that ends the script's query,
//! and the connection hands them over in that order, so they are all
//! collected when the script's query returns.

use std::cell::{Cell, RefCell};

use postgres::Config;
use tokio_postgres::error::DbError;

use crate::Notice;

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Vec<Notice>> = const { RefCell::new(Vec::new()) };
}

/// Makes the connections made with `config` report the server's notices
/// while migrations run, as [`Event::Notice`](crate::Event::Notice) to the
/// migrator's [`on_event`](crate::Migrator::on_event). Notices that
/// arrive while no migration runs are dropped: use it on the connection
/// that migrates (as an app does at start-up), not on a pool's.
///
/// ```no_run
/// use migrate_runtime::postgres::{Config, NoTls};
///
/// let mut config: Config = "postgres://app@localhost/app".parse()?;
/// let mut client = migrate_runtime::forward_notices(&mut config).connect(NoTls)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn forward_notices(config: &mut Config) -> &mut Config {
    config.notice_callback(|notice| {
        if CAPTURING.get() {
            CAPTURED.with_borrow_mut(|captured| captured.push(notice_of(&notice)));
        }
    })
}

fn notice_of(notice: &DbError) -> Notice {
    Notice {
        severity: notice.severity().to_owned(),
        message: notice.message().to_owned(),
        detail: notice.detail().map(str::to_owned),
        hint: notice.hint().map(str::to_owned),
    }
}

/// Collects this thread's notices, and the migrator's
/// [`NoticeForwarder`]'s, until dropped.
pub(super) struct Capture(Option<NoticeForwarder>);

impl Capture {
    pub(super) fn start(forwarder: Option<&NoticeForwarder>) -> Self {
        CAPTURING.set(true);
        if let Some(f) = forwarder {
            f.shared().capturing = true;
        }
        Self(forwarder.cloned())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURING.set(false);
        if let Some(f) = &self.0 {
            f.shared().capturing = false;
        }
    }
}

/// The notices collected on this thread and by `forwarder`, oldest first.
pub(super) fn take(forwarder: Option<&NoticeForwarder>) -> Vec<Notice> {
    let mut notices = CAPTURED.with_borrow_mut(std::mem::take);
    if let Some(f) = forwarder {
        notices.append(&mut f.shared().captured);
    }
    notices
}

/// Runs a `tokio-postgres` connection and collects the server's NOTICE,
/// WARNING and INFO messages while migrations run, for the migrators
/// given it with [`Migrator::notices_from`](crate::Migrator::notices_from):
/// the async counterpart of [`forward_notices`] (feature `tokio-postgres`).
///
/// Spawn [`drive`](Self::drive)`(connection)` where an app would spawn
/// the connection itself. Notices that arrive while no migration runs are
/// dropped, and so are notifications (`LISTEN`/`NOTIFY`): use it on the
/// connection that migrates (as an app does at start-up), not on a
/// pool's. Clones share what they collect.
///
/// ```no_run
/// use migrate_runtime::tokio_postgres::{self, NoTls};
/// use migrate_runtime::{Event, Migrator, NoticeForwarder};
///
/// # async fn start(migrations: &[migrate_runtime::Migration]) -> Result<(), Box<dyn std::error::Error>> {
/// let notices = NoticeForwarder::new();
/// let (mut client, connection) = tokio_postgres::connect("postgres://app@localhost/app", NoTls).await?;
/// tokio::spawn(notices.drive(connection));
/// Migrator::new(migrations)
///     .notices_from(&notices)
///     .on_event(|e| {
///         if let Event::Notice { notice, .. } = e {
///             eprintln!("{}: {}", notice.severity, notice.message);
///         }
///     })
///     .apply_tokio_postgres(&mut client)
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
#[cfg_attr(not(feature = "tokio-postgres"), allow(unreachable_pub))]
pub struct NoticeForwarder(std::sync::Arc<std::sync::Mutex<Forwarded>>);

#[derive(Debug, Default)]
#[cfg_attr(not(feature = "tokio-postgres"), allow(dead_code))]
struct Forwarded {
    capturing: bool,
    captured: Vec<Notice>,
}

impl NoticeForwarder {
    /// A forwarder that has collected nothing.
    #[cfg(feature = "tokio-postgres")]
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `connection` to its end, as `connection.await` does, collecting
    /// its notices while a migration of a migrator given this forwarder
    /// runs. Resolves to the connection's error, if it ends with one.
    #[cfg(feature = "tokio-postgres")]
    pub fn drive<S, T>(
        &self,
        mut connection: tokio_postgres::Connection<S, T>,
    ) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use std::task::Poll;
        let this = self.clone();
        // tokio-postgres's documented way to see a connection's notices
        // (`Connection::poll_message`, "use this method to drive the
        // connection rather than its Future implementation").
        std::future::poll_fn(move |cx| {
            loop {
                match connection.poll_message(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => return Poll::Ready(Ok(())),
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                    Poll::Ready(Some(Ok(tokio_postgres::AsyncMessage::Notice(notice)))) => {
                        let mut shared = this.shared();
                        if shared.capturing {
                            shared.captured.push(notice_of(&notice));
                        }
                    }
                    Poll::Ready(Some(Ok(_))) => {}
                }
            }
        })
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Forwarded> {
        // A panic elsewhere while holding it leaves a list that is still whole.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
