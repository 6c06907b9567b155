//! A transcript's token usage by quarter hour and model: the few counters
//! the usage report and cost estimates are summed from, kept beside the
//! other metadata so that no query ever rereads a transcript. Quarter hours
//! keep day boundaries exact in every time zone (all offsets in use are
//! multiples of 15 minutes).

use super::record::Usage;

/// Length of one usage bucket.
pub const BUCKET_MS: i64 = 15 * 60 * 1000;

/// Model index of API messages that name no model.
pub const NO_MODEL: u16 = u16::MAX;

/// Token counts by price category.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TokenCounts {
    pub input: u64,
    pub output: u64,
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
    pub cache_read: u64,
}

impl TokenCounts {
    /// The counts of one API response. Cache writes without the 5m/1h split
    /// are 5-minute writes (the default duration).
    pub fn of(usage: &Usage) -> Self {
        let split = usage.cache_creation.unwrap_or_default();
        let write_1h = split.ephemeral_1h_input_tokens.unwrap_or(0);
        let writes = usage
            .cache_creation_input_tokens
            .unwrap_or(split.ephemeral_5m_input_tokens.unwrap_or(0) + write_1h);
        Self {
            input: usage.input_tokens.unwrap_or(0),
            output: usage.output_tokens.unwrap_or(0),
            cache_write_5m: writes.saturating_sub(write_1h),
            cache_write_1h: write_1h.min(writes),
            cache_read: usage.cache_read_input_tokens.unwrap_or(0),
        }
    }

    pub fn add(&mut self, other: &Self) {
        self.input += other.input;
        self.output += other.output;
        self.cache_write_5m += other.cache_write_5m;
        self.cache_write_1h += other.cache_write_1h;
        self.cache_read += other.cache_read;
    }

    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_write_5m + self.cache_write_1h + self.cache_read
    }
}

/// Usage of one model in one quarter hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Quarter hours since the Unix epoch.
    pub quarter: u32,
    /// Index into the transcript's model list, or [`NO_MODEL`].
    pub model: u16,
    pub tokens: TokenCounts,
}

impl Bucket {
    /// Start of the bucket, Unix epoch ms.
    pub fn start_ms(&self) -> i64 {
        i64::from(self.quarter) * BUCKET_MS
    }
}

/// A transcript's buckets, in the order they were first written.
#[derive(Debug, Default, Clone)]
pub struct UsageLog(Vec<Bucket>);

impl UsageLog {
    /// Adds one API response written at `at_ms` by model `model`.
    pub fn add(&mut self, at_ms: i64, model: u16, usage: &Usage) {
        let quarter = u32::try_from(at_ms.max(0) / BUCKET_MS).unwrap_or(u32::MAX);
        let tokens = TokenCounts::of(usage);
        // Responses arrive in time order, so the bucket is nearly always one
        // of the last few.
        let recent = self.0.iter_mut().rev().take(4);
        match recent
            .into_iter()
            .find(|b| b.quarter == quarter && b.model == model)
        {
            Some(bucket) => bucket.tokens.add(&tokens),
            None => self.0.push(Bucket {
                quarter,
                model,
                tokens,
            }),
        }
    }

    pub fn buckets(&self) -> &[Bucket] {
        &self.0
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<Bucket>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::record::CacheCreation;

    #[test]
    fn cache_writes_split_into_5m_and_1h() {
        let usage = Usage {
            cache_creation_input_tokens: Some(100),
            cache_creation: Some(CacheCreation {
                ephemeral_5m_input_tokens: Some(60),
                ephemeral_1h_input_tokens: Some(40),
            }),
            ..Usage::default()
        };
        let t = TokenCounts::of(&usage);
        assert_eq!((t.cache_write_5m, t.cache_write_1h), (60, 40));
        let plain = Usage {
            cache_creation_input_tokens: Some(100),
            ..Usage::default()
        };
        assert_eq!(TokenCounts::of(&plain).cache_write_5m, 100);
    }

    #[test]
    fn same_quarter_and_model_share_a_bucket() {
        let mut log = UsageLog::default();
        let usage = Usage {
            input_tokens: Some(1),
            ..Usage::default()
        };
        log.add(0, 0, &usage);
        log.add(BUCKET_MS - 1, 0, &usage);
        log.add(BUCKET_MS - 1, 1, &usage);
        log.add(BUCKET_MS, 0, &usage);
        let inputs: Vec<_> = log.buckets().iter().map(|b| b.tokens.input).collect();
        assert_eq!(inputs, [2, 1, 1]);
    }
}
