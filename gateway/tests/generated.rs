//! Copies of single definitions that other files carry, generated from the
//! definition; each test fails when its copy is stale, and
//! `DISPATCH_UPDATE_GENERATED=1` rewrites the copy instead:
//!
//! - the web UI's limits (`web/src/generated/limits.ts`) from
//!   `dispatch_proto::limits`;
//! - docs/protocol.md's route table from `dispatch_gateway::routes::ROUTES`;
//! - the web UI's wire types (`web/src/generated/protocol.ts`) from
//!   `dispatch_gateway::protocol`.

use std::path::{Path, PathBuf};

const UPDATE: &str = "DISPATCH_UPDATE_GENERATED";
const REGENERATE: &str = "regenerate with DISPATCH_UPDATE_GENERATED=1 cargo nextest run -p dispatch-gateway --test generated";

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

#[test]
fn web_limits_match_the_shared_definition() {
    let path = repo_file("gateway/web/src/generated/limits.ts");
    let wanted = dispatch_proto::limits::typescript();
    if std::env::var_os(UPDATE).is_some() {
        std::fs::write(&path, &wanted).expect("writing limits.ts");
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(found == wanted, "{} is stale; {REGENERATE}", path.display());
}

#[test]
fn web_protocol_types_match_the_rust_types() {
    let path = repo_file("gateway/web/src/generated/protocol.ts");
    let wanted = dispatch_gateway::protocol::typescript();
    if std::env::var_os(UPDATE).is_some() {
        std::fs::write(&path, &wanted).expect("writing protocol.ts");
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(found == wanted, "{} is stale; {REGENERATE}", path.display());
}

const BEGIN: &str = "<!-- routes:begin -->\n";
const END: &str = "<!-- routes:end -->";

#[test]
fn docs_route_table_matches_the_declared_routes() {
    let path = repo_file("docs/protocol.md");
    let docs = std::fs::read_to_string(&path).expect("reading docs/protocol.md");
    let start = docs.find(BEGIN).expect("the routes:begin marker") + BEGIN.len();
    let end = docs.find(END).expect("the routes:end marker");
    let wanted = dispatch_gateway::routes::markdown_table();
    if std::env::var_os(UPDATE).is_some() {
        let updated = format!("{}{wanted}{}", &docs[..start], &docs[end..]);
        std::fs::write(&path, updated).expect("writing docs/protocol.md");
        return;
    }
    assert!(
        docs[start..end] == wanted,
        "the route table of {} is stale; {REGENERATE}\n{wanted}",
        path.display()
    );
}
