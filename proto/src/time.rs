//! The clock of the contract's timestamps: every `*_ms` field of
//! `dispatch.v1` (and every such figure either end computes from one) is
//! milliseconds since the Unix epoch, read here; expiries counted in whole
//! seconds (the gateway's login tokens) read the same clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whole seconds since the Unix epoch (0 for a clock set before it).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_milliseconds_since_the_epoch() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let now = now_ms();
        // 2020-01-01 in milliseconds: a count in seconds would be far below.
        assert!(now > 1_577_836_800_000);
        assert!((now - before).abs() < 60_000);
        assert!(now_secs().abs_diff(now as u64 / 1000) <= 1);
    }
}
