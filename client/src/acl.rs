//! ACL requests: `POST /v1/acl/bootstrap`, `POST /v1/acl/tokens` and
//! `GET /v1/acl/token/self`. Tokens are otherwise `acltokens` resources (`Api`).

use reqwest::Method;
use serde_json::Value;

use crate::client::{HttpClient, Request};
use crate::error::Result;

impl HttpClient {
    /// Bootstraps ACLs: the first management token, with its `secretID` (shown once).
    pub async fn acl_bootstrap(&self) -> Result<Value> {
        let req =
            Request::new(Method::POST, "/v1/acl/bootstrap".to_owned()).accept("application/json");
        self.json(req).await
    }

    /// Creates a token from `request` (`displayName`, `type`, `policies`, `expirationTime`
    /// or `expirationTTL`); the answer carries its `secretID`, shown once.
    pub async fn acl_create_token(&self, request: &Value) -> Result<Value> {
        let req = Request::new(Method::POST, "/v1/acl/tokens".to_owned())
            .json_body("application/json", request)
            .accept("application/json");
        self.json(req).await
    }

    /// The token this client sends.
    pub async fn acl_token_self(&self) -> Result<Value> {
        self.get_path("/v1/acl/token/self").await
    }
}
