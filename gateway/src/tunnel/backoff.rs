//! Exponential backoff with jitter between reconnection attempts.

use std::time::Duration;

use rand::Rng;

/// Doubles the wait after every failure, up to `longest`; `reset` starts
/// over. Each delay is jittered by up to a fifth so that many gateways
/// behind one tunnel server do not retry in step.
#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    longest: Duration,
    current: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, longest: Duration) -> Self {
        Self {
            first,
            longest,
            current: first,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.current = self.first;
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.longest);
        let jitter = rand::rng().random_range(0.8..=1.2);
        base.mul_f64(jitter).min(self.longest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_longest_and_resets() {
        let second = Duration::from_secs(1);
        let mut backoff = Backoff::new(second, 8 * second);
        let delays: Vec<_> = (0..6).map(|_| backoff.next_delay()).collect();
        let near = |d: Duration, s: f64| (d.as_secs_f64() - s).abs() <= s * 0.2 + 1e-9;
        for (delay, expected) in delays.iter().zip([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]) {
            assert!(near(*delay, expected), "{delay:?} vs {expected}");
            assert!(*delay <= 8 * second);
        }
        backoff.reset();
        assert!(near(backoff.next_delay(), 1.0));
    }
}
