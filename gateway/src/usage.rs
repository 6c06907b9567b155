//! Claude usage and estimated cost over a period, in front of the broker's
//! `GetUsage`: `GET /api/usage` (JSON) and `GET /api/usage/export.csv` (the
//! same figures, one row per group and model), both with
//! `since=&until=` (Unix epoch ms), `groupBy=day|model|project` and `tz=`
//! (IANA name or `+HH:MM`, where days begin). Routed by its lines in
//! [`crate::routes::ROUTES`], behind the gateway's authentication.

use std::fmt::Write as _;

use dispatch_proto::v1 as pb;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::error::{ApiError, json_response};
use crate::protocol::usage::{
    CostlyConversation, ModelUsage, UsageGroup, UsageQuery, UsageReport, UsageTokens,
};
use crate::router::ApiRequest;
use crate::state::AppState;

/// The JSON report's path.
pub const USAGE_PATH: &str = "/api/usage";
/// The CSV export's path.
pub const CSV_PATH: &str = "/api/usage/export.csv";

/// Answers a usage request, or `None` when the path is not one.
pub async fn handle(state: &AppState, request: &ApiRequest) -> Option<Result<Response, ApiError>> {
    let csv = match request.path.as_str() {
        USAGE_PATH => false,
        CSV_PATH => true,
        _ => return None,
    };
    Some(answer(state, request, csv).await)
}

async fn answer(state: &AppState, request: &ApiRequest, csv: bool) -> Result<Response, ApiError> {
    if !matches!(request.method.as_str(), "GET" | "HEAD") {
        return Err(ApiError::method_not_allowed());
    }
    let req = usage_request(request)?;
    let mut client = state.broker.conversations();
    let report = client
        .get_usage(state.broker.request(req, &request.id))
        .await
        .map_err(|s| ApiError::from_status(&s))?
        .into_inner();
    if csv {
        return Ok(csv_response(&report));
    }
    Ok(json_response(StatusCode::OK, &usage_report(&report)))
}

fn usage_request(request: &ApiRequest) -> Result<pb::UsageRequest, ApiError> {
    let params: UsageQuery = serde_urlencoded::from_str(request.query.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("bad query: {e}")))?;
    let group_by = match params.group_by.as_deref() {
        None | Some("day") => pb::UsageGroupBy::Day,
        Some("model") => pb::UsageGroupBy::Model,
        Some("project") => pb::UsageGroupBy::Project,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "groupBy must be day, model or project, not {other:?}"
            )));
        }
    };
    Ok(pb::UsageRequest {
        since_ms: params.since.unwrap_or(0),
        until_ms: params.until.unwrap_or(0),
        group_by: group_by as i32,
        time_zone: params.tz.unwrap_or_default(),
        top_conversations: params.top.unwrap_or(0),
    })
}

fn tokens(t: Option<&pb::UsageTokens>) -> UsageTokens {
    let t = t.copied().unwrap_or_default();
    UsageTokens {
        input: t.input,
        output: t.output,
        cache_write5m: t.cache_write_5m,
        cache_write1h: t.cache_write_1h,
        cache_read: t.cache_read,
        total: total(&t),
    }
}

fn total(t: &pb::UsageTokens) -> u64 {
    t.input + t.output + t.cache_write_5m + t.cache_write_1h + t.cache_read
}

fn group(g: &pb::UsageGroup) -> UsageGroup {
    let models = g
        .models
        .iter()
        .map(|m| ModelUsage {
            model: m.model.clone(),
            tokens: tokens(m.tokens.as_ref()),
            cost_usd: m.priced.then_some(m.cost_usd),
            priced: m.priced,
        })
        .collect();
    UsageGroup {
        key: g.key.clone(),
        tokens: tokens(g.tokens.as_ref()),
        cost_usd: g.cost_usd,
        models,
    }
}

/// The report in the protocol's shape; a model without a price has `costUsd: null`.
pub fn usage_report(r: &pb::UsageReport) -> UsageReport {
    let top_conversations = r
        .top_conversations
        .iter()
        .map(|c| CostlyConversation {
            id: c.id.clone(),
            title: c.title.clone(),
            project: c.project.clone(),
            cost_usd: c.cost_usd,
            tokens: tokens(c.tokens.as_ref()),
            unpriced: c.unpriced,
        })
        .collect();
    UsageReport {
        groups: r.groups.iter().map(group).collect(),
        totals: group(&r.totals.clone().unwrap_or_default()),
        top_conversations,
        price_table_version: r.price_table_version.clone(),
        unpriced_models: r.unpriced_models.clone(),
    }
}

/// Header of the CSV export.
pub const CSV_HEADER: &str =
    "group,model,input,output,cache_write_5m,cache_write_1h,cache_read,total_tokens,cost_usd";

/// One row per group and model; `cost_usd` says `no price` for a model the
/// table does not know. Cells are quoted when they hold a comma, quote or
/// line break, and a leading `=+-@` is neutralised (spreadsheet formulas).
pub fn report_csv(r: &pb::UsageReport) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for group in &r.groups {
        for m in &group.models {
            let t = m.tokens.unwrap_or_default();
            let cost = if m.priced {
                format!("{:.6}", m.cost_usd)
            } else {
                "no price".to_owned()
            };
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                csv_cell(&group.key),
                csv_cell(&m.model),
                t.input,
                t.output,
                t.cache_write_5m,
                t.cache_write_1h,
                t.cache_read,
                total(&t),
                cost
            );
        }
    }
    out
}

fn csv_cell(text: &str) -> String {
    let guarded = match text.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{text}"),
        _ => text.to_owned(),
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn csv_response(r: &pb::UsageReport) -> Response {
    let mut response = Response::new(report_csv(r).into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"claude-usage.csv\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("/home/a,b"), "\"/home/a,b\"");
        assert_eq!(csv_cell("=cmd()"), "'=cmd()");
        assert_eq!(csv_cell("plain"), "plain");
    }
}
