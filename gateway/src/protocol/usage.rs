//! The usage report of `GET /api/usage` (estimated cost of claude's tokens
//! over a period, grouped by day, model or project).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// How `GET /api/usage` groups its figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The default.
    Day,
    Model,
    Project,
}

/// The query string of `GET /api/usage` and `GET /api/usage/export.csv`;
/// any other parameter is refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[ts(optional_fields)]
pub struct UsageQuery {
    /// Epoch ms; usage is kept in 15-minute steps counted from their start.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Checked by the handler, whose refusal names the choices.
    #[ts(as = "Option<GroupBy>")]
    pub group_by: Option<String>,
    /// Where days begin: an IANA name, `UTC` or `+HH:MM`.
    pub tz: Option<String>,
    /// How many of the most expensive conversations to name.
    pub top: Option<u32>,
}

/// Token counts by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct UsageTokens {
    pub input: u64,
    pub output: u64,
    pub cache_write5m: u64,
    pub cache_write1h: u64,
    pub cache_read: u64,
    /// The sum of the others.
    pub total: u64,
}

/// One model's share of a group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ModelUsage {
    pub model: String,
    pub tokens: UsageTokens,
    /// `null` when the price table has no entry for the model.
    pub cost_usd: Option<f64>,
    pub priced: bool,
}

/// The figures of one day, model or project (or of the whole period).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct UsageGroup {
    /// The day (`YYYY-MM-DD`), model or project.
    pub key: String,
    pub tokens: UsageTokens,
    /// The priced models' cost.
    pub cost_usd: f64,
    pub models: Vec<ModelUsage>,
}

/// One of the period's most expensive conversations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CostlyConversation {
    pub id: String,
    pub title: String,
    pub project: String,
    /// Within the period.
    pub cost_usd: f64,
    pub tokens: UsageTokens,
    /// Some of its tokens have no price.
    pub unpriced: bool,
}

/// `GET /api/usage`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub groups: Vec<UsageGroup>,
    pub totals: UsageGroup,
    /// Most expensive first.
    pub top_conversations: Vec<CostlyConversation>,
    pub price_table_version: String,
    pub unpriced_models: Vec<String>,
}
