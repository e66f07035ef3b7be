//! Completes the futures of a blocking backend.
//!
//! The apply loop is written once, against [`Backend`](crate::backend::Backend)'s
//! `async` methods. A backend on a blocking driver (rusqlite, the sync
//! `postgres` crate) does its work inside the call and never waits on a
//! waker, so its futures are ready at the first poll: [`now`] polls once,
//! with a waker that does nothing, and needs no executor.

use std::future::Future;
use std::task::{Context, Poll, Waker};

/// The output of `future`, which must be ready at its first poll (a
/// blocking backend's).
///
/// # Panics
///
/// When `future` is not ready: an async driver's future given to the
/// blocking path, a bug in this crate.
pub(crate) fn now<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("a blocking backend's future waited"),
    }
}
