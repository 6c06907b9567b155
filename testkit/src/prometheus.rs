//! A strict parser of the Prometheus text exposition formats for tests: the
//! classic one (version 0.0.4) and OpenMetrics 1.0 (`_total` counters,
//! `info` families, `# UNIT`, the closing `# EOF`). Every sample must belong
//! to a family declared by `# TYPE` before it, names and labels must be well
//! formed, nothing may follow `# EOF`, and histograms must be cumulative with
//! a `+Inf` bucket equal to their `_count`.

use std::collections::{BTreeMap, HashMap};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    /// Family name to type (`counter`, `gauge`, `histogram`, ...).
    pub types: HashMap<String, String>,
}

impl Exposition {
    /// The value of the sample `name` whose labels include `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }

    /// The sum of every sample named `name`.
    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }
}

/// Parses `text`, or says which line is wrong and why.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut out = Exposition::default();
    let mut sampled: Vec<String> = Vec::new();
    let mut ended = false;
    for (number, line) in text.lines().enumerate() {
        let fail = |why: &str| Err(format!("line {}: {why}: {line:?}", number + 1));
        if ended {
            return fail("text after # EOF");
        }
        if line.trim().is_empty() {
            continue;
        }
        if line == "# EOF" {
            ended = true;
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.trim_start().splitn(3, ' ').collect();
            match words.as_slice() {
                ["TYPE", name, kind] => {
                    if !valid_name(name) {
                        return fail("bad metric name");
                    }
                    if !KINDS.contains(kind) {
                        return fail("unknown type");
                    }
                    if sampled.iter().any(|f| f == name) {
                        return fail("TYPE after the family's samples");
                    }
                    if out
                        .types
                        .insert(name.to_string(), kind.to_string())
                        .is_some()
                    {
                        return fail("TYPE declared twice");
                    }
                }
                ["HELP" | "UNIT", name, ..] if !valid_name(name) => {
                    return fail("bad metric name");
                }
                _ => {}
            }
            continue;
        }
        let sample = match parse_sample(line) {
            Ok(sample) => sample,
            Err(why) => return fail(&why),
        };
        let Some(family) = family_of(&sample.name, &out.types) else {
            return fail("sample without a TYPE");
        };
        if out.types[&family] == "counter" && sample.value < 0.0 {
            return fail("negative counter");
        }
        if !sampled.contains(&family) {
            sampled.push(family);
        }
        out.samples.push(sample);
    }
    check_histograms(&out)?;
    Ok(out)
}

/// Family types of both formats.
const KINDS: [&str; 9] = [
    "counter",
    "gauge",
    "histogram",
    "summary",
    "untyped",
    "info",
    "stateset",
    "gaugehistogram",
    "unknown",
];

/// The sample suffixes each kind of family may use.
fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "histogram" | "gaugehistogram" => {
            &["_bucket", "_sum", "_count", "_created", "_gsum", "_gcount"]
        }
        "summary" => &["_sum", "_count", "_created"],
        "info" => &["_info"],
        _ => &[],
    }
}

/// The family a sample belongs to (the suffixes of its kind removed).
fn family_of(name: &str, types: &HashMap<String, String>) -> Option<String> {
    if types.contains_key(name) {
        return Some(name.to_owned());
    }
    types
        .iter()
        .find(|(family, kind)| {
            suffixes(kind)
                .iter()
                .any(|suffix| name.strip_suffix(suffix) == Some(family.as_str()))
        })
        .map(|(family, _)| family.clone())
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err("bad metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = parse_labels(after, &mut labels)?;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| "bad timestamp".to_owned())?;
    }
    if fields.next().is_some() {
        return Err("trailing text".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `key="value",...}` and returns what follows the `}`.
fn parse_labels<'a>(
    mut text: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        if let Some(rest) = text.strip_prefix('}') {
            return Ok(rest);
        }
        let eq = text.find('=').ok_or("label without '='")?;
        let key = &text[..eq];
        if !valid_name(key) || key.contains(':') {
            return Err(format!("bad label name {key:?}"));
        }
        let mut chars = text[eq + 1..].char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err("label value not quoted".into());
        }
        let mut value = String::new();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break eq + 1 + i + 1,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err("bad escape in label value".into()),
                },
                Some((_, '\n')) => return Err("newline in label value".into()),
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(key.to_owned(), value).is_some() {
            return Err(format!("label {key:?} repeated"));
        }
        text = &text[end..];
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

/// Labels of one series, `le` left out.
type LabelSet = Vec<(String, String)>;

/// Buckets cumulative, `+Inf` present and equal to `_count`.
fn check_histograms(exposition: &Exposition) -> Result<(), String> {
    for (family, kind) in &exposition.types {
        if kind != "histogram" {
            continue;
        }
        let bucket = format!("{family}_bucket");
        let mut series: BTreeMap<LabelSet, Vec<(f64, f64)>> = BTreeMap::new();
        for sample in exposition.samples.iter().filter(|s| s.name == bucket) {
            let le = sample
                .labels
                .get("le")
                .ok_or_else(|| format!("{bucket} without le"))?;
            let le: f64 = match le.as_str() {
                "+Inf" => f64::INFINITY,
                v => v.parse().map_err(|_| format!("{bucket}: bad le {v:?}"))?,
            };
            let key = sample
                .labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            series.entry(key).or_default().push((le, sample.value));
        }
        for (labels, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            if buckets.windows(2).any(|w| w[1].1 < w[0].1) {
                return Err(format!("{family}{labels:?}: buckets not cumulative"));
            }
            let Some(&(le, total)) = buckets.last().filter(|(le, _)| le.is_infinite()) else {
                return Err(format!("{family}{labels:?}: no +Inf bucket"));
            };
            let _ = le;
            let count = exposition
                .samples
                .iter()
                .find(|s| {
                    s.name == format!("{family}_count")
                        && s.labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .eq(labels.iter().cloned())
                })
                .ok_or_else(|| format!("{family}{labels:?}: no _count"))?;
            if count.value != total {
                return Err(format!(
                    "{family}{labels:?}: +Inf bucket {total} != count {}",
                    count.value
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_valid_exposition() {
        let text = "# HELP up Whether.\n# TYPE up gauge\nup 1\n# TYPE lat histogram\nlat_bucket{m=\"a\\\"b\",le=\"0.1\"} 1\nlat_bucket{m=\"a\\\"b\",le=\"+Inf\"} 2\nlat_sum{m=\"a\\\"b\"} 0.3\nlat_count{m=\"a\\\"b\"} 2\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.get("up", &[]), Some(1.0));
        assert_eq!(parsed.get("lat_count", &[("m", "a\"b")]), Some(2.0));
    }

    #[test]
    fn parses_openmetrics() {
        let text = "# HELP c Things.\n# TYPE c counter\nc_total 3\n# TYPE build info\nbuild_info{version=\"1\"} 1\n# TYPE d_seconds histogram\n# UNIT d_seconds seconds\nd_seconds_sum 0.5\nd_seconds_count 1\nd_seconds_bucket{le=\"1.0\"} 1\nd_seconds_bucket{le=\"+Inf\"} 1\n# EOF\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.get("c_total", &[]), Some(3.0));
        assert_eq!(parsed.types["c"], "counter");
        assert_eq!(parsed.get("build_info", &[("version", "1")]), Some(1.0));
        assert_eq!(parsed.get("d_seconds_count", &[]), Some(1.0));
    }

    #[test]
    fn rejects_malformed_text() {
        assert!(parse("up 1\n").is_err(), "no TYPE");
        assert!(parse("# TYPE up gauge\nup{a=b} 1\n").is_err(), "unquoted");
        assert!(parse("# TYPE up gauge\nup one\n").is_err(), "bad value");
        assert!(parse("# TYPE 1up gauge\n").is_err(), "bad name");
        assert!(
            parse("# TYPE c counter\nc -1\n").is_err(),
            "negative counter"
        );
        assert!(
            parse("# TYPE up gauge\n# EOF\nup 1\n").is_err(),
            "after EOF"
        );
        assert!(
            parse("# TYPE c counter\nc_bucket 1\n").is_err(),
            "wrong suffix"
        );
        let not_cumulative =
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n";
        assert!(parse(not_cumulative).is_err());
    }
}
