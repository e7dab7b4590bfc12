//! kubectl with a token in its kubeconfig: kubectl sends a token only over TLS, so the server
//! serves HTTPS (and asks for kubectl's client certificate); `kubectl auth can-i` answers from
//! the same ACLs.

use caravan_e2e::Sandbox;
use caravan_e2e::tls::Certs;

use super::start_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_with_a_token_in_its_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(dir.path());
    let (sandbox, management) = start_with(Sandbox::builder().name("acl-kubectl").tls(&certs));
    let refused = sandbox.kubectl(&["get", "jobs"]);
    refused.assert_failure();
    assert!(refused.stderr.contains("Forbidden"), "{}", refused.stderr);
    let reader = super::token_with(&sandbox, &management, super::tokens::READ_ONLY, "readonly");
    sandbox.write_kubeconfig_with_token(Some(&reader)).unwrap();
    sandbox.kubectl(&["get", "jobs"]).assert_success();
    // `kubectl auth can-i` asks the same ACLs (a SelfSubjectAccessReview).
    sandbox
        .kubectl(&["auth", "can-i", "list", "jobs"])
        .assert_success()
        .assert_stdout_contains("yes");
    let cannot = sandbox.kubectl(&["auth", "can-i", "create", "jobs"]);
    cannot.assert_failure();
    assert!(cannot.stdout.contains("no"), "{}", cannot.stdout);
    let denied = sandbox.kubectl(&["delete", "job", "nothing"]);
    denied.assert_failure();
    assert!(denied.stderr.contains("Forbidden"), "{}", denied.stderr);
    sandbox
        .write_kubeconfig_with_token(Some(&management))
        .unwrap();
    let policy = sandbox.write_file("policy.yaml", super::tokens::READ_ONLY);
    let applied = sandbox.kubectl(&["apply", "-f", policy.to_str().unwrap()]);
    applied.assert_success();
    assert!(applied.stdout.contains("aclpolicy"), "{}", applied.stdout);
}
