//! The GraphQL-over-HTTP spec's own audit suite (npm `graphql-http`, `auditServer`) against the
//! real server: every MUST, SHOULD and MAY it checks passes. `tests/e2e/http-audit.mjs` runs it;
//! `scripts/test` installs its locked dependencies (`npm ci`).

use serde_json::Value;

use crate::common::TestApp;

#[tokio::test(flavor = "multi_thread")]
async fn the_graphql_over_http_audit_passes_without_a_warning() {
    let e2e = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e");
    assert!(
        std::path::Path::new(e2e)
            .join("node_modules/graphql-http")
            .exists(),
        "tests/e2e has no node_modules: run scripts/test (it runs `npm ci` there)"
    );
    let app = TestApp::spawn().await;
    let audit = tokio::process::Command::new("node")
        .arg("http-audit.mjs")
        .current_dir(e2e)
        .env("ENCORE_URL", app.server.url())
        .output()
        .await
        .expect("node runs");
    let out = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    eprintln!("{out}");
    let summary: Value = out
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .expect("a summary line");
    assert!(summary["ok"].as_u64() >= Some(50), "{summary}");
    for status in ["error", "warn", "notice"] {
        assert_eq!(summary[status], 0, "{out}");
    }
}
