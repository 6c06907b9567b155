//! The JSONL record shapes the index reads: a borrowed, partial view of a
//! transcript line (unknown fields are skipped, never buffered), timestamp
//! parsing and the line splitter that tolerates partial and oversized lines.

use std::borrow::Cow;
use std::io::{self, BufRead};

use serde::Deserialize;
use serde_json::value::RawValue;

/// Lines longer than this are skipped and counted, never buffered whole.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// The fields of one transcript line that the index needs.
#[derive(Debug, Deserialize)]
pub struct Record<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub uuid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub cwd: Option<Cow<'a, str>>,
    #[serde(rename = "sessionId", borrow, default)]
    pub session_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub version: Option<Cow<'a, str>>,
    #[serde(rename = "gitBranch", borrow, default)]
    pub git_branch: Option<Cow<'a, str>>,
    #[serde(rename = "isMeta", default)]
    pub is_meta: Option<bool>,
    #[serde(rename = "isCompactSummary", default)]
    pub is_compact_summary: Option<bool>,
    #[serde(borrow, default)]
    pub summary: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub message: Option<RecordMessage<'a>>,
}

/// `message` of a user or assistant line.
#[derive(Debug, Deserialize)]
pub struct RecordMessage<'a> {
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub content: Option<&'a RawValue>,
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// Token usage of one API response (repeated on each of its lines).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    /// The cache writes split by duration (newer transcripts).
    #[serde(default)]
    pub cache_creation: Option<CacheCreation>,
}

/// `usage.cache_creation`: cache writes by cache duration.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct CacheCreation {
    #[serde(default)]
    pub ephemeral_5m_input_tokens: Option<u64>,
    #[serde(default)]
    pub ephemeral_1h_input_tokens: Option<u64>,
}

/// A content block, reduced to what the index counts.
#[derive(Debug, Deserialize)]
pub struct LiteBlock<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
}

/// Message content: a plain prompt or a list of blocks.
pub enum LiteContent<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<LiteBlock<'a>>),
    Other,
}

impl<'a> RecordMessage<'a> {
    /// Parses `content` lazily (a string or an array of blocks).
    pub fn lite_content(&self) -> LiteContent<'a> {
        let Some(raw) = self.content else {
            return LiteContent::Other;
        };
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<Cow<'a, str>>(text)
                .map(LiteContent::Text)
                .unwrap_or(LiteContent::Other),
            Some(b'[') => serde_json::from_str::<Vec<LiteBlock<'a>>>(text)
                .map(LiteContent::Blocks)
                .unwrap_or(LiteContent::Other),
            _ => LiteContent::Other,
        }
    }
}

/// Whether a user prompt is machine-injected rather than typed by a person.
pub fn is_injected_prompt(text: &str) -> bool {
    let t = text.trim_start();
    t.is_empty()
        || t.starts_with("<command-")
        || t.starts_with("<local-command")
        || t.starts_with("<system-reminder>")
        || t.starts_with("Caveat:")
        || t.starts_with("[Request interrupted")
}

/// Parses an ISO 8601 UTC timestamp (`2025-11-20T10:00:03.100Z`, offsets
/// allowed) into Unix epoch milliseconds.
pub fn parse_timestamp_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let mut scale = 100;
        for c in frac[..digits].bytes().take(3) {
            millis += i64::from(c - b'0') * scale;
            scale /= 10;
        }
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = &rest[1..];
            let (oh, om) = (
                r.get(0..2)?.parse::<i64>().ok()?,
                r.get(r.len() - 2..)?.parse::<i64>().ok()?,
            );
            sign * (oh * 60 + om)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// One piece of input seen by [`scan_lines`].
pub enum Line<'a> {
    /// A complete line, without its `\n`.
    Complete(&'a [u8]),
    /// A line over the cap, skipped; its length without the `\n`.
    Oversized(u64),
}

/// What is left after the last `\n`.
#[derive(Debug, Default)]
pub struct LinesEnd {
    /// Bytes consumed through the last newline.
    pub consumed: u64,
    /// The unterminated tail (possibly a line still being written).
    pub tail: Vec<u8>,
    /// The tail is longer than [`MAX_LINE_BYTES`] (and was dropped).
    pub tail_oversized: bool,
}

/// Splits `reader` into lines without ever holding more than one line of at
/// most `cap` bytes.
pub fn scan_lines<R: BufRead>(
    reader: &mut R,
    cap: usize,
    mut on_line: impl FnMut(Line<'_>),
) -> io::Result<LinesEnd> {
    let mut line: Vec<u8> = Vec::new();
    let mut skipping: Option<u64> = None;
    let mut consumed = 0u64;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        match memchr::memchr(b'\n', buf) {
            Some(pos) => {
                let line_len;
                if let Some(skipped) = skipping.take() {
                    line_len = skipped + pos as u64;
                    on_line(Line::Oversized(line_len));
                } else if line.is_empty() {
                    line_len = pos as u64;
                    if pos > cap {
                        on_line(Line::Oversized(line_len));
                    } else {
                        on_line(Line::Complete(&buf[..pos]));
                    }
                } else {
                    line_len = (line.len() + pos) as u64;
                    if line.len() + pos > cap {
                        on_line(Line::Oversized(line_len));
                    } else {
                        line.extend_from_slice(&buf[..pos]);
                        on_line(Line::Complete(&line));
                    }
                    line.clear();
                }
                consumed += line_len + 1;
                reader.consume(pos + 1);
            }
            None => {
                let n = buf.len();
                match skipping.as_mut() {
                    Some(skipped) => *skipped += n as u64,
                    None if line.len() + n > cap => {
                        skipping = Some((line.len() + n) as u64);
                        line = Vec::new();
                    }
                    None => line.extend_from_slice(buf),
                }
                reader.consume(n);
            }
        }
    }
    Ok(LinesEnd {
        consumed,
        tail_oversized: skipping.is_some(),
        tail: line,
    })
}

/// Repairs invalid UTF-8 (with U+FFFD); tells whether it had to.
pub fn to_utf8(line: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(line) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => (String::from_utf8_lossy(line), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_epoch_millis() {
        assert_eq!(parse_timestamp_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_timestamp_ms("2025-11-20T10:00:03.100Z"),
            Some(1_763_632_803_100)
        );
        assert_eq!(
            parse_timestamp_ms("2025-11-20T11:00:03.100+01:00"),
            Some(1_763_632_803_100)
        );
        assert_eq!(parse_timestamp_ms("yesterday"), None);
    }

    #[test]
    fn lines_split_with_partial_tail_and_oversized_skip() {
        let data = b"{\"a\":1}\n0123456789ABCDEF\n{\"b\":2}\n{\"par";
        let mut reader = io::BufReader::with_capacity(4, &data[..]);
        let mut seen = Vec::new();
        let end = scan_lines(&mut reader, 10, |line| match line {
            Line::Complete(l) => seen.push(String::from_utf8(l.to_vec()).unwrap()),
            Line::Oversized(len) => seen.push(format!("oversized {len}")),
        })
        .unwrap();
        assert_eq!(seen, ["{\"a\":1}", "oversized 16", "{\"b\":2}"]);
        assert_eq!(end.consumed, 33);
        assert_eq!(end.tail, b"{\"par");
    }
}
