//! Usage and cost summed from the index's per-transcript buckets: the
//! `GetUsage` report (tokens and estimated cost per local day, model or
//! project, totals, the most expensive conversations) and a conversation's
//! estimated cost. Subagent transcripts count towards their conversation;
//! every API message was counted once when its transcript was read.

use std::collections::{BTreeMap, HashMap};

use dispatch_proto::v1 as pb;
use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};

use super::pricing::{Price, PriceTable};
use super::stats::TranscriptStats;
use super::usage_log::{Bucket, NO_MODEL, TokenCounts};

/// Name under which API messages without a model are reported.
pub const UNKNOWN_MODEL: &str = "unknown";

/// How the report is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Model,
    Project,
}

/// A usage query.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    /// Buckets starting at or after this (Unix epoch ms; 15-minute steps).
    pub since_ms: Option<i64>,
    /// Buckets starting before this.
    pub until_ms: Option<i64>,
    pub group_by: GroupBy,
    /// Where days begin and end.
    pub time_zone: TimeZone,
    /// How many of the most expensive conversations to name.
    pub top: usize,
}

/// A time zone by IANA name (`Europe/Berlin`), `UTC`, or fixed offset
/// (`+05:30`, `-08:00`); empty means UTC.
pub fn parse_time_zone(name: &str) -> Result<TimeZone, String> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(TimeZone::UTC);
    }
    if let Some(offset) = parse_offset(name) {
        return Ok(TimeZone::fixed(offset));
    }
    TimeZone::get(name).map_err(|_| format!("unknown time zone {name:?}"))
}

fn parse_offset(text: &str) -> Option<Offset> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = text[1..].split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=18).contains(&h) || !(0..60).contains(&m) {
        return None;
    }
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

/// One conversation, as the index hands it to [`UsageSum::add`].
pub struct ConversationFiles<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub project: &'a str,
    /// The main transcript first, then its subagents.
    pub files: &'a [&'a TranscriptStats],
}

/// Group key: a local day or an interned name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum GroupKey {
    Day(Date),
    Name(u32),
}

/// Strings interned while summing.
#[derive(Default)]
struct Names {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }
}

/// A conversation named in the report.
struct Costly {
    cost: f64,
    id: String,
    title: String,
    project: String,
    tokens: TokenCounts,
    unpriced: bool,
}

/// The running sums of a usage query.
pub struct UsageSum<'p> {
    query: UsageQuery,
    prices: &'p PriceTable,
    names: Names,
    cells: HashMap<(GroupKey, u32), TokenCounts>,
    days: HashMap<u32, Date>,
    top: Vec<Costly>,
    conversation: Vec<(u32, TokenCounts)>,
    /// Interned names of the current transcript's models, by index.
    model_ids: Vec<u32>,
    /// Prices by interned name, looked up once.
    price_cache: Vec<Option<Option<Price>>>,
}

impl<'p> UsageSum<'p> {
    pub fn new(query: UsageQuery, prices: &'p PriceTable) -> Self {
        Self {
            query,
            prices,
            names: Names::default(),
            cells: HashMap::new(),
            days: HashMap::new(),
            top: Vec::new(),
            conversation: Vec::new(),
            model_ids: Vec::new(),
            price_cache: Vec::new(),
        }
    }

    /// Adds one conversation's buckets within the period.
    pub fn add(&mut self, c: &ConversationFiles<'_>) {
        self.conversation.clear();
        let project = self.names.id(c.project);
        for stats in c.files {
            self.model_ids.clear();
            for name in &stats.models {
                let id = self.names.id(name);
                self.model_ids.push(id);
            }
            for bucket in stats.usage.buckets() {
                if !self.within(bucket) {
                    continue;
                }
                let model = match self.model_ids.get(usize::from(bucket.model)) {
                    Some(id) => *id,
                    None => self.names.id(UNKNOWN_MODEL),
                };
                let key = self.group_key(project, bucket, model);
                self.cells
                    .entry((key, model))
                    .or_default()
                    .add(&bucket.tokens);
                add_model(&mut self.conversation, model, &bucket.tokens);
            }
        }
        self.rank(c);
    }

    fn within(&self, bucket: &Bucket) -> bool {
        let start = bucket.start_ms();
        self.query.since_ms.is_none_or(|t| start >= t)
            && self.query.until_ms.is_none_or(|t| start < t)
    }

    fn group_key(&mut self, project: u32, bucket: &Bucket, model: u32) -> GroupKey {
        match self.query.group_by {
            GroupBy::Model => GroupKey::Name(model),
            GroupBy::Project => GroupKey::Name(project),
            GroupBy::Day => {
                let tz = &self.query.time_zone;
                let day = *self
                    .days
                    .entry(bucket.quarter)
                    .or_insert_with(|| local_date(tz, bucket.start_ms()));
                GroupKey::Day(day)
            }
        }
    }

    /// Keeps `c` if it is among the most expensive so far.
    fn rank(&mut self, c: &ConversationFiles<'_>) {
        if self.conversation.is_empty() || self.query.top == 0 {
            return;
        }
        let priced = self.priced_cost();
        let full = self.top.len() >= self.query.top;
        if full && self.top.last().is_some_and(|last| last.cost >= priced.cost) {
            return;
        }
        let mut tokens = TokenCounts::default();
        for (_, t) in &self.conversation {
            tokens.add(t);
        }
        let at = self.top.partition_point(|k| k.cost >= priced.cost);
        self.top.insert(
            at,
            Costly {
                cost: priced.cost,
                id: c.id.to_owned(),
                title: c.title.to_owned(),
                project: c.project.to_owned(),
                tokens,
                unpriced: priced.unpriced,
            },
        );
        self.top.truncate(self.query.top);
    }

    /// The price of interned model `model` (looked up once per query).
    fn model_price(&mut self, model: u32) -> Option<Price> {
        let at = model as usize;
        if self.price_cache.len() <= at {
            self.price_cache.resize(at + 1, None);
        }
        *self.price_cache[at]
            .get_or_insert_with(|| self.prices.price(&self.names.names[at]).copied())
    }

    /// The current conversation's cost within the period.
    fn priced_cost(&mut self) -> Priced {
        let mut priced = Priced {
            cost: 0.0,
            unpriced: false,
        };
        for at in 0..self.conversation.len() {
            let (model, tokens) = self.conversation[at];
            match self.model_price(model) {
                Some(price) => priced.cost += price.cost(&tokens),
                None => priced.unpriced |= tokens.total() > 0,
            }
        }
        priced
    }

    /// The report.
    pub fn finish(self) -> pb::UsageReport {
        let mut groups: BTreeMap<GroupKey, Vec<(u32, TokenCounts)>> = BTreeMap::new();
        let mut totals: BTreeMap<u32, TokenCounts> = BTreeMap::new();
        for ((key, model), tokens) in &self.cells {
            groups.entry(*key).or_default().push((*model, *tokens));
            totals.entry(*model).or_default().add(tokens);
        }
        let names = &self.names;
        let group = |key: String, models: Vec<(u32, TokenCounts)>| {
            usage_group(key, models, names, self.prices)
        };
        let mut out: Vec<pb::UsageGroup> = groups
            .into_iter()
            .map(|(key, models)| group(self.key_name(key), models))
            .collect();
        if self.query.group_by != GroupBy::Day {
            out.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd).then(a.key.cmp(&b.key)));
        }
        let totals = group(String::new(), totals.into_iter().collect());
        let mut unpriced_models: Vec<String> = totals
            .models
            .iter()
            .filter(|m| !m.priced)
            .map(|m| m.model.clone())
            .collect();
        unpriced_models.sort();
        pb::UsageReport {
            groups: out,
            totals: Some(totals),
            top_conversations: self.top.into_iter().map(costly_pb).collect(),
            price_table_version: self.prices.version().to_owned(),
            unpriced_models,
        }
    }

    fn key_name(&self, key: GroupKey) -> String {
        match key {
            GroupKey::Day(day) => day.to_string(),
            GroupKey::Name(id) => self.names.names[id as usize].clone(),
        }
    }
}

fn local_date(tz: &TimeZone, at_ms: i64) -> Date {
    let at = jiff::Timestamp::from_millisecond(at_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    tz.to_datetime(at).date()
}

fn model_name(stats: &TranscriptStats, model: u16) -> &str {
    if model == NO_MODEL {
        return UNKNOWN_MODEL;
    }
    stats
        .models
        .get(usize::from(model))
        .map_or(UNKNOWN_MODEL, String::as_str)
}

fn add_model(models: &mut Vec<(u32, TokenCounts)>, model: u32, tokens: &TokenCounts) {
    match models.iter_mut().find(|(m, _)| *m == model) {
        Some((_, sum)) => sum.add(tokens),
        None => models.push((model, *tokens)),
    }
}

/// A cost and whether some tokens had no price.
struct Priced {
    cost: f64,
    unpriced: bool,
}

fn usage_group(
    key: String,
    models: Vec<(u32, TokenCounts)>,
    names: &Names,
    prices: &PriceTable,
) -> pb::UsageGroup {
    let mut group = pb::UsageGroup {
        key,
        ..Default::default()
    };
    let mut sum = TokenCounts::default();
    // By name, so that costs are summed in the same order every time.
    let mut models = models;
    models.sort_by(|a, b| names.names[a.0 as usize].cmp(&names.names[b.0 as usize]));
    for (model, tokens) in models {
        let name = &names.names[model as usize];
        let price = prices.price(name);
        let cost = price.map_or(0.0, |p| p.cost(&tokens));
        sum.add(&tokens);
        group.cost_usd += cost;
        group.models.push(pb::ModelUsage {
            model: name.clone(),
            tokens: Some(tokens_pb(&tokens)),
            cost_usd: cost,
            priced: price.is_some(),
        });
    }
    group.tokens = Some(tokens_pb(&sum));
    group
}

fn costly_pb(c: Costly) -> pb::ConversationCost {
    pb::ConversationCost {
        id: c.id,
        title: c.title,
        project: c.project,
        cost_usd: c.cost,
        tokens: Some(tokens_pb(&c.tokens)),
        unpriced: c.unpriced,
    }
}

pub fn tokens_pb(t: &TokenCounts) -> pb::UsageTokens {
    pb::UsageTokens {
        input: t.input,
        output: t.output,
        cache_write_5m: t.cache_write_5m,
        cache_write_1h: t.cache_write_1h,
        cache_read: t.cache_read,
    }
}

/// A conversation's estimated cost (all time) and the models it used that
/// have no price (with tokens).
pub fn conversation_cost(files: &[&TranscriptStats], prices: &PriceTable) -> (f64, Vec<String>) {
    let mut by_model: Vec<(&str, TokenCounts)> = Vec::new();
    for stats in files {
        for bucket in stats.usage.buckets() {
            let name = model_name(stats, bucket.model);
            match by_model.iter_mut().find(|(m, _)| *m == name) {
                Some((_, sum)) => sum.add(&bucket.tokens),
                None => by_model.push((name, bucket.tokens)),
            }
        }
    }
    let mut cost = 0.0;
    let mut unpriced = Vec::new();
    for (model, tokens) in by_model {
        match prices.price(model) {
            Some(price) => cost += price.cost(&tokens),
            None if tokens.total() > 0 => unpriced.push(model.to_owned()),
            None => {}
        }
    }
    (cost, unpriced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_by_name_and_offset() {
        assert!(parse_time_zone("").is_ok());
        assert!(parse_time_zone("+05:30").is_ok());
        assert!(parse_time_zone("Nowhere/Atlantis").is_err());
        let tz = parse_time_zone("-08:00").unwrap();
        // 2026-01-02T03:00Z is still January 1st at UTC-8.
        let day = local_date(&tz, 1_767_322_800_000);
        assert_eq!(day.to_string(), "2026-01-01");
    }
}
