//! The web UI's copy of the shared limits (`gateway/web/src/generated/limits.ts`)
//! is generated from `dispatch_proto::limits`; this test fails when it is stale.
//! `DISPATCH_UPDATE_GENERATED=1` rewrites it instead.

use std::path::PathBuf;

#[test]
fn web_limits_match_the_shared_definition() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web/src/generated/limits.ts");
    let wanted = dispatch_proto::limits::typescript();
    if std::env::var_os("DISPATCH_UPDATE_GENERATED").is_some() {
        std::fs::write(&path, &wanted).expect("writing limits.ts");
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == wanted,
        "{} is stale; regenerate it with DISPATCH_UPDATE_GENERATED=1 \
         cargo nextest run -p dispatch-gateway --test generated_limits",
        path.display()
    );
}
