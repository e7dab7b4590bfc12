//! ACLs end to end, against a real `caravan agent --dev --acl-enabled`: every route refuses a
//! request without a token (`routes.rs`), tokens are scoped by their policies (`tokens.rs`),
//! a node's secret id reaches only its own objects (`nodes.rs`); a revoked token stops
//! working on every server of a cluster (`servers/acl.rs`).

use caravan_e2e::Sandbox;
use serde_json::Value;

mod kubectl;
mod nodes;
mod routes;
pub(crate) mod tokens;

/// A server with ACLs on, bootstrapped: the sandbox and the management token's secret.
pub(crate) fn start(name: &str) -> (Sandbox, String) {
    start_with(Sandbox::builder().name(name))
}

/// `builder`'s agent with ACLs on, bootstrapped.
pub(crate) fn start_with(builder: caravan_e2e::sandbox::SandboxBuilder) -> (Sandbox, String) {
    let sandbox = builder
        .arg("--acl-enabled")
        .start()
        .unwrap_or_else(|e| panic!("the agent did not start: {e:#}"));
    let out = sandbox.caravan(&["acl", "bootstrap"]);
    out.assert_success();
    let secret = secret_of(&out.stdout);
    (sandbox, secret)
}

/// The `Secret ID` a `caravan acl bootstrap` or `acl token create` printed.
pub(crate) fn secret_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Secret ID"))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s != "<hidden>")
        .unwrap_or_else(|| panic!("no secret in {stdout:?}"))
}

/// Applies the ACLPolicy `yaml` and makes a client token granted `policy`; its secret.
pub(crate) fn token_with(sandbox: &Sandbox, management: &str, yaml: &str, policy: &str) -> String {
    let file = sandbox.write_file(&format!("{policy}.yaml"), yaml);
    sandbox
        .caravan(&["--token", management, "apply", "-f", file.to_str().unwrap()])
        .assert_success();
    let out = sandbox.caravan(&[
        "--token", management, "acl", "token", "create", "--name", policy, "--policy", policy,
    ]);
    out.assert_success();
    secret_of(&out.stdout)
}

/// A request's answer: the code and the body (JSON when it is).
pub(crate) async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request failed");
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The first `Some` `check` answers, polled until a 30 s deadline.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
