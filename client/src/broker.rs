//! The leader's eval broker over HTTP (`/v1/eval-broker/…`), so scheduler workers run on
//! followers too: [`EvalSource`] for [`HttpClient`].

use std::time::Duration;

use caravan_runtime::eval_source::{BrokerError, Delivery, EvalSource, Token};
use caravan_schemas::evaluation::EvaluationType;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::client::{HttpClient, Request};

impl HttpClient {
    async fn settle(&self, op: &str, eval: &str, token: Token) -> Result<(), BrokerError> {
        let req = Request::new(Method::POST, format!("/v1/eval-broker/{op}"))
            .json_body("application/json", &json!({"eval": eval, "token": token}))
            .accept("application/json");
        match self.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.status().is_some_and(|s| s.code == 409) => {
                Err(BrokerError::NotOutstanding {
                    eval: eval.to_string(),
                    token,
                })
            }
            Err(e) => Err(BrokerError::Unreachable(e.to_string())),
        }
    }
}

impl EvalSource for HttpClient {
    async fn dequeue(&self, types: &[EvaluationType], timeout: Duration) -> Option<Delivery> {
        let body = json!({"types": types, "timeoutMs": timeout.as_millis() as u64});
        let req = Request::new(Method::POST, "/v1/eval-broker/dequeue".to_string())
            .json_body("application/json", &body)
            .accept("application/json");
        match self.send(req).await {
            Ok((_, resp)) if resp.status() == StatusCode::NO_CONTENT => None,
            Ok((_, resp)) => match resp.json::<Delivery>().await {
                Ok(delivery) => Some(delivery),
                Err(e) => {
                    tracing::warn!(error = %e, "undecodable delivery from the eval broker");
                    None
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "no eval broker to dequeue from");
                // Nobody to ask (an election, no leader yet): wait as a dequeue would.
                tokio::time::sleep(timeout).await;
                None
            }
        }
    }

    async fn ack(&self, eval: &str, token: Token) -> Result<(), BrokerError> {
        self.settle("ack", eval, token).await
    }

    async fn nack(&self, eval: &str, token: Token) -> Result<(), BrokerError> {
        self.settle("nack", eval, token).await
    }

    async fn outstanding_reset(&self, eval: &str, token: Token) -> Result<(), BrokerError> {
        self.settle("reset", eval, token).await
    }

    async fn pause_nack_timeout(&self, eval: &str, token: Token) -> Result<(), BrokerError> {
        self.settle("pause", eval, token).await
    }

    async fn resume_nack_timeout(&self, eval: &str, token: Token) -> Result<(), BrokerError> {
        self.settle("resume", eval, token).await
    }
}
