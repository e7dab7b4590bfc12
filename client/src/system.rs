//! System requests: `PUT /v1/system/gc`, a garbage collection pass now.

use caravan_schemas::gc::GcSummary;
use reqwest::Method;

use crate::client::{HttpClient, Request};
use crate::error::Result;

impl HttpClient {
    /// Runs a garbage collection pass on the server now and returns what it deleted. With
    /// `force` every age threshold is ignored (Nomad's `nomad system gc`); nothing live is
    /// deleted either way. A server without controllers answers 503.
    pub async fn system_gc(&self, force: bool) -> Result<GcSummary> {
        let path = if force {
            "/v1/system/gc?force=true"
        } else {
            "/v1/system/gc"
        };
        let req = Request::new(Method::PUT, path.to_owned()).accept("application/json");
        self.json(req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn one_shot(code: &str, body: &str) -> (HttpClient, tokio::task::JoinHandle<String>) {
        crate::test_support::one_shot(code, "application/json", body).await
    }

    #[tokio::test]
    async fn system_gc_puts_and_decodes_the_summary() {
        let body = r#"{"apiVersion":"caravan.dev/v1","kind":"GcSummary","nodes":{"count":1,"names":["n1"]},"jobs":{"count":0,"names":[]},"evaluations":{"count":0,"names":[]},"allocations":{"count":0,"names":[]}}"#;
        let (client, served) = one_shot("200 OK", body).await;
        let summary = client.system_gc(true).await.unwrap();
        assert_eq!(summary.nodes.names, ["n1"]);
        assert_eq!(summary.total(), 1);
        let request = served.await.unwrap();
        assert!(
            request.starts_with("PUT /v1/system/gc?force=true HTTP/1.1"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_server_without_controllers_is_an_error() {
        let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no controllers","reason":"ServiceUnavailable","code":503}"#;
        let (client, _served) = one_shot("503 Service Unavailable", status).await;
        let err = client.system_gc(false).await.unwrap_err();
        assert_eq!(err.code(), Some(503));
    }
}
