//! The per-model price table behind cost estimates: built-in prices of the
//! Claude models (USD per million tokens, from the published pricing page)
//! and a JSON file (`PRICES_FILE`) that overrides or extends them. A model
//! that matches no entry has no price: its tokens are counted, never priced
//! as another model.
//!
//! The file's shape:
//!
//! ```json
//! {"version": "team-2026-12",
//!  "models": {"claude-opus-4-7": {"input": 5, "output": 25, "cacheWrite5m": 6.25,
//!                                 "cacheWrite1h": 10, "cacheRead": 0.5}}}
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::usage_log::TokenCounts;

/// Version of the built-in table: the date its prices were read from
/// <https://platform.claude.com/docs/en/about-claude/pricing>.
pub const BUILTIN_VERSION: &str = "anthropic-2026-12";

/// The context window of Claude models, in tokens.
pub const CONTEXT_WINDOW: u64 = 200_000;
/// The extended window (1M-token context), assumed once a response used
/// more than [`CONTEXT_WINDOW`].
pub const EXTENDED_CONTEXT_WINDOW: u64 = 1_000_000;

/// The window a response of `context_tokens` ran in.
pub fn context_window(context_tokens: u64) -> u64 {
    if context_tokens > CONTEXT_WINDOW {
        EXTENDED_CONTEXT_WINDOW
    } else {
        CONTEXT_WINDOW
    }
}

/// USD per million tokens of one model.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_write_5m: f64,
    pub cache_write_1h: f64,
    pub cache_read: f64,
}

impl Price {
    const fn new(input: f64, output: f64, write_5m: f64, write_1h: f64, read: f64) -> Self {
        Self {
            input,
            output,
            cache_write_5m: write_5m,
            cache_write_1h: write_1h,
            cache_read: read,
        }
    }

    /// The cost of `tokens` at this price, in USD.
    pub fn cost(&self, tokens: &TokenCounts) -> f64 {
        (tokens.input as f64 * self.input
            + tokens.output as f64 * self.output
            + tokens.cache_write_5m as f64 * self.cache_write_5m
            + tokens.cache_write_1h as f64 * self.cache_write_1h
            + tokens.cache_read as f64 * self.cache_read)
            / 1_000_000.0
    }
}

const OPUS_45: Price = Price::new(5.0, 25.0, 6.25, 10.0, 0.50);
const OPUS_4: Price = Price::new(15.0, 75.0, 18.75, 30.0, 1.50);
const SONNET: Price = Price::new(3.0, 15.0, 3.75, 6.0, 0.30);
const HAIKU_45: Price = Price::new(1.0, 5.0, 1.25, 2.0, 0.10);
const HAIKU_35: Price = Price::new(0.80, 4.0, 1.0, 1.6, 0.08);
const HAIKU_3: Price = Price::new(0.25, 1.25, 0.30, 0.50, 0.03);

/// Model ids (without their date suffix) and their prices.
const BUILTIN: &[(&str, Price)] = &[
    ("claude-opus-5", OPUS_45),
    ("claude-opus-4-8", OPUS_45),
    ("claude-opus-4-7", OPUS_45),
    ("claude-opus-4-6", OPUS_45),
    ("claude-opus-4-5", OPUS_45),
    ("claude-opus-4-1", OPUS_4),
    ("claude-opus-4", OPUS_4),
    ("claude-3-opus", OPUS_4),
    ("claude-sonnet-4-6", SONNET),
    ("claude-sonnet-4-5", SONNET),
    ("claude-sonnet-4", SONNET),
    ("claude-3-7-sonnet", SONNET),
    ("claude-3-5-sonnet", SONNET),
    ("claude-haiku-4-5", HAIKU_45),
    ("claude-3-5-haiku", HAIKU_35),
    ("claude-3-haiku", HAIKU_3),
];

/// The prices in force and their version.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    version: String,
    models: BTreeMap<String, Price>,
}

/// `PRICES_FILE`'s shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    version: String,
    models: BTreeMap<String, Price>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::builtin()
    }
}

impl PriceTable {
    /// The built-in table.
    pub fn builtin() -> Self {
        Self {
            version: BUILTIN_VERSION.to_owned(),
            models: BUILTIN.iter().map(|(m, p)| ((*m).to_owned(), *p)).collect(),
        }
    }

    /// The built-in table overridden and extended by the JSON file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the price file {}: {e}", path.display()))?;
        Self::builtin().extended(&text)
    }

    /// This table overridden and extended by a price file's JSON text.
    pub fn extended(mut self, json: &str) -> Result<Self, String> {
        let file: PriceFile =
            serde_json::from_str(json).map_err(|e| format!("bad price file: {e}"))?;
        if file.version.trim().is_empty() {
            return Err("bad price file: `version` is empty".to_owned());
        }
        for (model, price) in file.models {
            check_price(&model, &price)?;
            self.models.insert(model, price);
        }
        self.version = format!("{}+{}", self.version, file.version.trim());
        Ok(self)
    }

    /// The table's version (the built-in one, plus the file's when loaded).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The price of `model`: an entry named exactly so, or so plus a date
    /// suffix (`claude-sonnet-4-5-20250929`). `None`: no price.
    pub fn price(&self, model: &str) -> Option<&Price> {
        if let Some(price) = self.models.get(model) {
            return Some(price);
        }
        let (base, date) = model.rsplit_once('-')?;
        let dated = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit());
        dated.then(|| self.models.get(base)).flatten()
    }
}

fn check_price(model: &str, price: &Price) -> Result<(), String> {
    let all = [
        price.input,
        price.output,
        price.cache_write_5m,
        price.cache_write_1h,
        price.cache_read,
    ];
    if model.is_empty() || all.iter().any(|p| !p.is_finite() || *p < 0.0) {
        return Err(format!(
            "bad price file: {model:?} needs a name and finite prices of at least 0"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_ids_match_their_model_and_nothing_else() {
        let table = PriceTable::builtin();
        assert_eq!(table.price("claude-sonnet-4-5-20250929"), Some(&SONNET));
        assert_eq!(table.price("claude-opus-4-20250514"), Some(&OPUS_4));
        assert_eq!(table.price("claude-opus-4-5"), Some(&OPUS_45));
        // A newer model is not priced as an older one.
        assert_eq!(table.price("claude-opus-4-9"), None);
        assert_eq!(table.price("claude-opus-4-9-20270101"), None);
        assert_eq!(table.price("<synthetic>"), None);
    }

    #[test]
    fn a_file_overrides_and_extends_and_names_its_version() {
        let table = PriceTable::builtin()
            .extended(
                r#"{"version":"v2","models":{"claude-x":{"input":1,"output":2,
                "cacheWrite5m":3,"cacheWrite1h":4,"cacheRead":5}}}"#,
            )
            .unwrap();
        assert_eq!(table.version(), "anthropic-2026-12+v2");
        assert_eq!(table.price("claude-x").unwrap().cache_read, 5.0);
        let bad = PriceTable::builtin().extended(r#"{"version":"v","models":{"m":{"input":-1}}}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn cost_is_per_million_tokens() {
        let tokens = TokenCounts {
            input: 1_000_000,
            output: 1_000_000,
            cache_write_5m: 1_000_000,
            cache_write_1h: 1_000_000,
            cache_read: 1_000_000,
        };
        assert!((SONNET.cost(&tokens) - (3.0 + 15.0 + 3.75 + 6.0 + 0.30)).abs() < 1e-9);
    }
}
