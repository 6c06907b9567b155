//! Usage and cost through a real gateway and a real gRPC conversation
//! service over a generated history (days either side of midnight in two
//! time zones, several models, subagents in both layouts, responses written
//! as several lines, damaged lines, a model without a price, a price file
//! that overrides one model). Every expected figure is summed here from the
//! generator's list of responses, never read back from the index.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dispatch_broker::conversations::{ConversationIndex, IndexConfig, PriceTable};
use dispatch_gateway::{Config, Gateway};
use dispatch_testkit::usage_history::{self, History, MODELS, Response, UsageTokens, local_day};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const KEY: &str = "usage-test-key-0123456789abcdef";
/// 2026-03-01T16:00:00Z.
const START_MS: i64 = 1_772_380_800_000;
const CONVERSATIONS: usize = 24;
const KOLKATA: i64 = 330;
const LOS_ANGELES_WINTER: i64 = -480;
const PRICE_FILE: &str = r#"{"version": "test-1", "models": {"claude-haiku-4-5":
  {"input": 2, "output": 8, "cacheWrite5m": 2.5, "cacheWrite1h": 4, "cacheRead": 0.2}}}"#;

/// The prices this test expects, by model id as written (None: no price).
fn price(model: &str) -> Option<[f64; 5]> {
    match model {
        "claude-sonnet-4-5-20250929" => Some([3.0, 15.0, 3.75, 6.0, 0.30]),
        "claude-opus-4-6" => Some([5.0, 25.0, 6.25, 10.0, 0.50]),
        "claude-haiku-4-5-20251001" => Some([2.0, 8.0, 2.5, 4.0, 0.2]),
        _ => None,
    }
}

fn cost(model: &str, t: &UsageTokens) -> Option<f64> {
    let p = price(model)?;
    let n = [
        t.input,
        t.output,
        t.cache_write_5m,
        t.cache_write_1h,
        t.cache_read,
    ];
    Some(n.iter().zip(p).map(|(n, p)| *n as f64 * p).sum::<f64>() / 1e6)
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

struct Stack {
    _home: tempfile::TempDir,
    history: History,
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Stack {
    async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let home = tempfile::tempdir().unwrap();
        let history = usage_history::generate(home.path(), CONVERSATIONS, START_MS, 23).unwrap();
        let prices_path = home.path().join("prices.json");
        std::fs::write(&prices_path, PRICE_FILE).unwrap();
        let shutdown = CancellationToken::new();
        let mut config = IndexConfig::new(home.path());
        config.rescan_interval = Duration::from_secs(3600);
        config.prices = Arc::new(PriceTable::load(&prices_path).unwrap());
        let index = ConversationIndex::open(config, shutdown.clone()).await;
        let broker = dispatch_testkit::conversations::serve(index, shutdown.clone()).await;
        let cli = Cli::try_parse_from([
            "dispatch-gateway",
            "--port",
            "0",
            "--terminal-key",
            KEY,
            "--broker-url",
            &format!("http://{broker}"),
            "--state-dir",
            home.path().join("gateway-state").to_str().unwrap(),
        ])
        .unwrap();
        let gateway = Gateway::new(cli.config).unwrap();
        let gateway_shutdown = gateway.shutdown_token();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            gateway_shutdown.cancel();
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(gateway.serve(listener));
        Self {
            _home: home,
            history,
            base,
            http: reqwest::Client::new(),
            shutdown,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        response.json().await.unwrap()
    }
}

/// Expected tokens by group, then model.
type Expected = BTreeMap<String, BTreeMap<String, UsageTokens>>;

fn expect(responses: &[&Response], key: impl Fn(&Response) -> String) -> Expected {
    let mut out = Expected::new();
    for r in responses {
        out.entry(key(r))
            .or_default()
            .entry(r.model.clone())
            .or_default()
            .add(&r.tokens);
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn assert_tokens(json: &Value, t: &UsageTokens, what: &str) {
    let got = [
        &json["input"],
        &json["output"],
        &json["cacheWrite5m"],
        &json["cacheWrite1h"],
        &json["cacheRead"],
        &json["total"],
    ]
    .map(|v| v.as_u64().unwrap());
    let want = [
        t.input,
        t.output,
        t.cache_write_5m,
        t.cache_write_1h,
        t.cache_read,
        t.total(),
    ];
    assert_eq!(got, want, "{what}");
}

/// Checks one model entry (tokens, cost or its absence) and returns the cost.
fn check_model(entry: &Value, model: &str, t: &UsageTokens, what: &str) -> f64 {
    assert_eq!(entry["model"], model, "{what}");
    assert_tokens(&entry["tokens"], t, &format!("{what} {model}"));
    match cost(model, t) {
        Some(want) => {
            assert_eq!(entry["priced"], true, "{what} {model}");
            let got = entry["costUsd"].as_f64().unwrap();
            assert!(close(got, want), "{what} {model}: {got} != {want}");
            want
        }
        None => {
            assert_eq!(entry["priced"], false, "{what} {model}");
            assert!(entry["costUsd"].is_null(), "{what} {model}: no price");
            0.0
        }
    }
}

fn check_group(group: &Value, models: &BTreeMap<String, UsageTokens>, what: &str) {
    let entries = group["models"].as_array().unwrap();
    assert_eq!(entries.len(), models.len(), "{what}: models");
    let mut sum = UsageTokens::default();
    let mut total_cost = 0.0;
    for (entry, (model, t)) in entries.iter().zip(models) {
        total_cost += check_model(entry, model, t, what);
        sum.add(t);
    }
    assert_tokens(&group["tokens"], &sum, what);
    let got = group["costUsd"].as_f64().unwrap();
    assert!(close(got, total_cost), "{what}: {got} != {total_cost}");
}

fn check_report(report: &Value, expected: &Expected, ordered_by_key: bool) {
    let groups = report["groups"].as_array().unwrap();
    let mut keys: Vec<&str> = groups.iter().map(|g| g["key"].as_str().unwrap()).collect();
    if ordered_by_key {
        assert!(keys.is_sorted(), "days in order: {keys:?}");
    }
    keys.sort();
    assert_eq!(
        keys,
        expected.keys().map(String::as_str).collect::<Vec<_>>()
    );
    let mut totals: BTreeMap<String, UsageTokens> = BTreeMap::new();
    for group in groups {
        let key = group["key"].as_str().unwrap();
        check_group(group, &expected[key], key);
        for (model, t) in &expected[key] {
            totals.entry(model.clone()).or_default().add(t);
        }
    }
    check_group(&report["totals"], &totals, "totals");
}

#[tokio::test]
async fn usage_per_day_model_and_project_equals_the_generated_history() {
    let stack = Stack::start().await;
    let all: Vec<&Response> = stack.history.responses.iter().collect();
    assert!(stack.history.damaged_lines > 0 && all.len() > 100);
    let crossing = all
        .iter()
        .filter(|r| local_day(r.at_ms, KOLKATA) != local_day(r.at_ms, 0))
        .count();
    assert!(crossing > 0, "some responses change day with the zone");

    let kolkata = stack.json("/api/usage?groupBy=day&tz=Asia/Kolkata").await;
    check_report(
        &kolkata,
        &expect(&all, |r| local_day(r.at_ms, KOLKATA)),
        true,
    );
    assert_eq!(kolkata["priceTableVersion"], "anthropic-2026-12+test-1");
    assert_eq!(kolkata["unpricedModels"], serde_json::json!([MODELS[3]]));
    let offset = stack.json("/api/usage?tz=%2B05:30").await;
    assert_eq!(offset["groups"], kolkata["groups"], "+05:30 is Kolkata");

    let la = stack.json("/api/usage?groupBy=day&tz=-08:00").await;
    check_report(
        &la,
        &expect(&all, |r| local_day(r.at_ms, LOS_ANGELES_WINTER)),
        true,
    );
    assert_ne!(la["groups"], kolkata["groups"]);

    let models = stack.json("/api/usage?groupBy=model").await;
    check_report(&models, &expect(&all, |r| r.model.clone()), false);
    let projects = stack.json("/api/usage?groupBy=project").await;
    check_report(&projects, &expect(&all, |r| r.project.clone()), false);
    let costs: Vec<f64> = projects["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["costUsd"].as_f64().unwrap())
        .collect();
    assert!(costs.is_sorted_by(|a, b| a >= b), "most expensive first");
}

#[tokio::test]
async fn a_period_counts_only_its_responses_and_names_the_costliest_conversations() {
    let stack = Stack::start().await;
    // From midnight in Kolkata of the second day to midnight of the fourth.
    let first_day = local_day(START_MS, KOLKATA);
    let day_ms = 86_400_000;
    let midnight = |days: i64| {
        let mut t = START_MS - (START_MS + KOLKATA * 60_000).rem_euclid(day_ms);
        t += days * day_ms;
        t
    };
    assert_eq!(local_day(midnight(0), KOLKATA), first_day);
    let (since, until) = (midnight(1), midnight(3));
    let within: Vec<&Response> = stack
        .history
        .responses
        .iter()
        .filter(|r| r.at_ms >= since && r.at_ms < until)
        .collect();
    let report = stack
        .json(&format!(
            "/api/usage?since={since}&until={until}&tz=Asia/Kolkata&top=5"
        ))
        .await;
    let expected = expect(&within, |r| local_day(r.at_ms, KOLKATA));
    assert_eq!(expected.len(), 2);
    check_report(&report, &expected, true);

    let mut per_conversation: BTreeMap<&str, (f64, bool)> = BTreeMap::new();
    for r in &within {
        let entry = per_conversation.entry(&r.conversation).or_default();
        match cost(&r.model, &r.tokens) {
            Some(c) => entry.0 += c,
            None => entry.1 = true,
        }
    }
    let mut ranked: Vec<(&str, (f64, bool))> = per_conversation.into_iter().collect();
    ranked.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    let top = report["topConversations"].as_array().unwrap();
    assert_eq!(top.len(), 5);
    for (got, (id, (cost, unpriced))) in top.iter().zip(&ranked) {
        assert_eq!(got["id"], *id);
        assert!(close(got["costUsd"].as_f64().unwrap(), *cost));
        assert_eq!(got["unpriced"], *unpriced);
        assert!(got["title"].as_str().unwrap().starts_with("Usage task"));
    }
}

#[tokio::test]
async fn each_conversation_lists_its_cost_with_subagents_and_unpriced_models() {
    let stack = Stack::start().await;
    let list = stack.json("/api/conversations?limit=500").await;
    let conversations = list["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), CONVERSATIONS);
    for c in conversations {
        let id = c["id"].as_str().unwrap();
        let mine: Vec<&Response> = stack
            .history
            .responses
            .iter()
            .filter(|r| r.conversation == id)
            .collect();
        let want: f64 = mine.iter().filter_map(|r| cost(&r.model, &r.tokens)).sum();
        assert!(close(c["costUsd"].as_f64().unwrap(), want), "{id}");
        let unpriced = mine.iter().any(|r| price(&r.model).is_none());
        let listed = c["unpricedModels"].as_array().unwrap();
        assert_eq!(!listed.is_empty(), unpriced, "{id}");
        let one = stack.json(&format!("/api/conversations/{id}")).await;
        assert_eq!(one["costUsd"], c["costUsd"]);
        // Live context: the main transcript's last response, subagents aside.
        let last = mine.iter().rfind(|r| !r.sidechain).unwrap();
        let t = &last.tokens;
        let context = t.input + t.cache_write_5m + t.cache_write_1h + t.cache_read;
        assert_eq!(c["context"]["tokens"], context, "{id}");
        assert_eq!(c["context"]["model"], last.model.as_str(), "{id}");
        let window = if context > 200_000 {
            1_000_000
        } else {
            200_000
        };
        assert_eq!(c["context"]["window"], window, "{id}");
    }
}

#[tokio::test]
async fn the_csv_export_has_a_row_per_group_and_model_and_bad_queries_are_refused() {
    let stack = Stack::start().await;
    let report = stack.json("/api/usage?groupBy=project").await;
    let response = stack.get("/api/usage/export.csv?groupBy=project").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], dispatch_gateway::usage::CSV_HEADER);
    let rows: usize = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["models"].as_array().unwrap().len())
        .sum();
    assert_eq!(lines.len(), rows + 1);
    assert!(lines.iter().any(|l| l.starts_with("\"/home/bob/api,v2\",")));
    assert!(lines.iter().any(|l| l.ends_with(",no price")));

    for (query, status) in [
        ("groupBy=week", 400),
        ("tz=Nowhere/Atlantis", 400),
        ("since=10&until=5", 400),
        ("since=yesterday", 400),
    ] {
        let response = stack.get(&format!("/api/usage?{query}")).await;
        assert_eq!(response.status().as_u16(), status, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{query}"
        );
    }
    let anonymous = stack
        .http
        .get(format!("{}/api/usage", stack.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}
