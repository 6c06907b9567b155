//! What one connection is doing, for the limits that depend on it: how many
//! requests are in progress and since when it is idle (the idle timeout), how
//! many it has served (the keep-alive limit), and the request body deadline.
//!
//! A request counts as in progress from its head until its response body has
//! been written (so a long event stream is never idle); an upgraded
//! connection leaves the server loop and with it these rules.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Buf;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use warp::hyper::body::{Body, Frame, SizeHint};

use super::limits::Closing;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// In-progress requests and the end of the last one.
#[derive(Clone, Copy, Debug)]
struct Busy {
    in_flight: usize,
    idle_since: Instant,
    /// The keep-alive limit has been reached.
    spent: bool,
}

/// One connection's activity.
#[derive(Debug)]
pub struct Activity {
    busy: watch::Sender<Busy>,
    requests: AtomicU64,
    max_requests: u64,
}

impl Activity {
    pub fn new(max_requests: u64) -> Arc<Self> {
        let busy = Busy {
            in_flight: 0,
            idle_since: Instant::now(),
            spent: false,
        };
        Arc::new(Self {
            busy: watch::Sender::new(busy),
            requests: AtomicU64::new(0),
            max_requests,
        })
    }

    /// Records a request's start; returns its guard and whether it is the
    /// last one this connection serves.
    pub fn begin(self: &Arc<Self>) -> (InFlight, bool) {
        let served = self.requests.fetch_add(1, Ordering::AcqRel) + 1;
        let last = served >= self.max_requests;
        self.busy.send_modify(|busy| {
            busy.in_flight += 1;
            busy.spent |= last;
        });
        (InFlight(self.clone()), last)
    }

    /// Resolves when the connection should be closed: the keep-alive limit
    /// was reached, or nothing has been in progress for `idle`.
    pub async fn until_close(&self, idle: Duration) -> Closing {
        let mut rx = self.busy.subscribe();
        loop {
            let busy = *rx.borrow_and_update();
            if busy.spent {
                return Closing::KeepAliveLimit;
            }
            if busy.in_flight > 0 {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(busy.idle_since + idle) => return Closing::IdleTimeout,
                changed = rx.changed() => if changed.is_err() {
                    std::future::pending::<()>().await;
                },
            }
        }
    }
}

/// A request in progress; dropped with its response body.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.busy.send_modify(|busy| {
            busy.in_flight -= 1;
            busy.idle_since = Instant::now();
        });
    }
}

/// A response body that keeps its request counted as in progress.
#[derive(Debug)]
pub struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub fn new(body: B, in_flight: InFlight) -> Self {
        Self {
            body,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that must arrive whole before a deadline; past it, reading
/// fails and `expired` is set.
pub struct Deadline<B> {
    body: B,
    deadline: Instant,
    within: Duration,
    /// Bytes received since the deadline was last set.
    received: usize,
    timer: Option<Pin<Box<Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl<B> Deadline<B> {
    pub fn new(body: B, within: Duration, expired: Arc<AtomicBool>) -> Self {
        Self {
            body,
            deadline: Instant::now() + within,
            within,
            received: 0,
            timer: None,
            expired,
        }
    }
}

impl<B> Deadline<B> {
    /// Counts received bytes: each [`EXTEND_EVERY`] bytes move the deadline
    /// to `within` from now, so a large body (an upload) is held to a least
    /// rate rather than one deadline for the whole.
    fn progress(&mut self, bytes: usize) {
        self.received += bytes;
        if self.received < EXTEND_EVERY {
            return;
        }
        self.received = 0;
        self.deadline = Instant::now() + self.within;
        if let Some(timer) = self.timer.as_mut() {
            timer.as_mut().reset(self.deadline);
        }
    }
}

/// Bytes of a body after which its deadline is extended (a JSON body,
/// at most [`crate::router::MAX_BODY`], has one deadline for the whole).
pub const EXTEND_EVERY: usize = crate::router::MAX_BODY;

impl<B> Body for Deadline<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                this.progress(data.map_or(0, Buf::remaining));
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(timer.as_mut().poll(cx));
        this.expired.store(true, Ordering::Release);
        Poll::Ready(Some(Err("the request body did not arrive in time".into())))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_only_when_nothing_is_in_progress() {
        let activity = Activity::new(10);
        let (request, last) = activity.begin();
        assert!(!last);
        let idle = Duration::from_millis(200);
        let closing = activity.until_close(idle);
        tokio::pin!(closing);
        let busy = tokio::time::timeout(Duration::from_millis(600), &mut closing).await;
        assert!(busy.is_err(), "idle while a request is in progress");
        drop(request);
        let started = Instant::now();
        assert_eq!(closing.await, Closing::IdleTimeout);
        assert!(started.elapsed() >= idle);
    }

    #[tokio::test]
    async fn the_last_request_spends_the_connection() {
        let activity = Activity::new(2);
        let _first = activity.begin();
        let (_second, last) = activity.begin();
        assert!(last);
        let closing = activity.until_close(Duration::from_secs(60)).await;
        assert_eq!(closing, Closing::KeepAliveLimit);
    }
}
