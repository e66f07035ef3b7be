//! The server's NOTICE, WARNING and INFO messages sent while a migration's
//! script runs (`RAISE NOTICE`, "table … does not exist, skipping"), as
//! [`Event::Notice`](crate::Event::Notice).
//!
//! The sync driver hands them to a callback set on its [`Config`] when the
//! connection is made (by default it logs them). [`forward_notices`] sets
//! ours; the driver runs it on the thread that waits for the server, which
//! is the thread running the migration, so the messages are collected per
//! thread while a script runs and reported by the apply loop afterwards.

use std::cell::{Cell, RefCell};

use postgres::Config;

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
            CAPTURED.with_borrow_mut(|captured| {
                captured.push(Notice {
                    severity: notice.severity().to_owned(),
                    message: notice.message().to_owned(),
                    detail: notice.detail().map(str::to_owned),
                    hint: notice.hint().map(str::to_owned),
                });
            });
        }
    })
}

/// Collects this thread's notices until dropped.
pub(super) struct Capture(());

impl Capture {
    pub(super) fn start() -> Self {
        CAPTURING.set(true);
        Self(())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURING.set(false);
    }
}

/// The notices collected on this thread, oldest first.
pub(super) fn take() -> Vec<Notice> {
    CAPTURED.with_borrow_mut(std::mem::take)
}
