//! The per-client budget of failed credentials: every wrong key or forged
//! token, wherever it is presented (`POST /api/login`, `Authorization:
//! Bearer` on REST, `/metrics` and WebSocket upgrades, the login cookie),
//! spends one token of a bucket of `LOGIN_BURST` refilled one every
//! `LOGIN_REFILL_SECS`. Once a client's bucket is empty, every request of its
//! that presents a credential is answered 429 with `Retry-After` before the
//! credential is even looked at, so a guesser is slowed to a crawl while the
//! real user, after a few typos, waits seconds, not hours. Each failure is
//! logged (never the secret) and counted in
//! `dispatch_gateway_login_failures_total`. The table is bounded: full
//! buckets are forgotten.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use warp::http::StatusCode;
use warp::reply::Response;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Most addresses tracked at once; beyond that, the fullest buckets are dropped.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug)]
pub struct FailureLimiter {
    burst: f64,
    refill: Duration,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
    /// Where failures are counted.
    metrics: Metrics,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl FailureLimiter {
    /// A budget of `burst` failures, one more every `refill`; failures are
    /// counted in `metrics`.
    pub fn new(burst: u32, refill: Duration, metrics: &Metrics) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            refill: refill.max(Duration::from_millis(1)),
            buckets: Mutex::new(HashMap::new()),
            metrics: metrics.clone(),
        }
    }

    /// `Err(retry_after_secs)` when `ip` has no attempt left right now.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let buckets = crate::sync::lock(&self.buckets);
        match buckets.get(&ip) {
            Some(bucket) => {
                let tokens = self.refilled(bucket, now);
                if tokens >= 1.0 {
                    Ok(())
                } else {
                    let wait = (1.0 - tokens) * self.refill.as_secs_f64();
                    Err(wait.ceil().max(1.0) as u64)
                }
            }
            None => Ok(()),
        }
    }

    /// The 429 answer for a client whose budget is spent, else `None`.
    pub fn refusal(&self, ip: IpAddr) -> Option<Response> {
        self.exhausted(ip).map(ApiError::into_response)
    }

    /// The 429 error for a client whose budget is spent (logged and counted), else `None`.
    pub fn exhausted(&self, ip: IpAddr) -> Option<ApiError> {
        let retry_after = self.check(ip).err()?;
        tracing::warn!(client = %ip, "credential refused: too many failures");
        self.metrics.login_failed();
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed credentials; retry later",
        );
        error.retry_after = Some(retry_after);
        Some(error)
    }

    /// Spends one of `ip`'s attempts on a wrong `what` (`key`, `bearer`,
    /// `cookie`) presented at `path`; logs and counts it.
    pub fn record_failure(&self, ip: IpAddr, what: &str, path: &str) {
        self.fail(ip);
        tracing::warn!(client = %ip, credential = what, path, "wrong credential");
        self.metrics.login_failed();
    }

    /// Records a failed attempt from `ip`.
    pub fn fail(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut buckets = crate::sync::lock(&self.buckets);
        if buckets.len() >= MAX_TRACKED {
            let (burst, refill) = (self.burst, self.refill);
            buckets.retain(|_, b| refilled(burst, refill, b, now) < burst);
        }
        let tokens = buckets
            .get(&ip)
            .map_or(self.burst, |b| self.refilled(b, now));
        buckets.insert(
            ip,
            Bucket {
                tokens: (tokens - 1.0).max(0.0),
                updated: now,
            },
        );
    }

    /// Forgets `ip`'s failures after a successful login.
    pub fn succeed(&self, ip: IpAddr) {
        crate::sync::lock(&self.buckets).remove(&ip);
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        refilled(self.burst, self.refill, bucket, now)
    }
}

fn refilled(burst: f64, refill: Duration, bucket: &Bucket, now: Instant) -> f64 {
    let elapsed = now.duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed / refill.as_secs_f64()).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_then_refilled() {
        let limiter = FailureLimiter::new(3, Duration::from_millis(50), &Metrics::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(ip).is_ok());
            limiter.fail(ip);
        }
        assert_eq!(limiter.check(ip), Err(1));
        assert!(limiter.check("192.0.2.2".parse().unwrap()).is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.check(ip).is_ok());
    }
}
