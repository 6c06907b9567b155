//! `PRICES_FILE`: a broker with a missing or invalid price file refuses to
//! start and says why (a valid one is exercised by the browser test of the
//! usage view, through the real broker).

async fn start_with_prices(contents: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let prices = dir.path().join("prices.json");
    if let Some(text) = contents {
        std::fs::write(&prices, text).unwrap();
    }
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dispatch-broker"))
        .env("BROKER_LISTEN", "127.0.0.1:0")
        .env("BROKER_TOKEN", "prices-test-token-0123456789")
        .env("PTY_ROOT", dir.path().join("pty"))
        .env("CLAUDE_HOME", dir.path().join("claude"))
        .env("PRICES_FILE", &prices)
        .env("BROKER_IDLE_EXIT_SECS", "1")
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_missing_or_invalid_price_file_stops_the_broker_with_a_reason() {
    let (ok, stderr) = start_with_prices(None).await;
    assert!(!ok);
    assert!(stderr.contains("cannot read the price file"), "{stderr}");
    let (ok, stderr) =
        start_with_prices(Some(r#"{"version":"v1","models":{"m":{"input":1}}}"#)).await;
    assert!(!ok);
    assert!(stderr.contains("bad price file"), "{stderr}");
    let negative = r#"{"version":"v1","models":{"m":{"input":-1,"output":1,
        "cacheWrite5m":1,"cacheWrite1h":1,"cacheRead":1}}}"#;
    let (ok, stderr) = start_with_prices(Some(negative)).await;
    assert!(!ok);
    assert!(stderr.contains("finite prices of at least 0"), "{stderr}");
}
