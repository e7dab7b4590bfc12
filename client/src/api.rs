//! [`Api`]: the verbs on one kind within one namespace (or all of them).

use caravan_schemas::{API_VERSION, Kind, ListMeta, Status};
use futures::stream::{BoxStream, StreamExt};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{HttpClient, Request};
use crate::error::{Error, Result};
use crate::params::{
    DeleteParams, IncludeObject, ListParams, PatchParams, PostParams, WatchParams, encode,
};
use crate::table::{TABLE_ACCEPT, Table};
use crate::watch::{WireEvent, decode_events};

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// A page of objects, as returned by a list.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireList {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default)]
    pub items: Vec<Value>,
}

/// What a delete returned: the object (still terminating, or as it was), or a `Status`.
#[derive(Clone, Debug, PartialEq)]
pub enum Deleted {
    Object(Value),
    Status(Box<Status>),
}

/// The verbs on objects of one kind, in one namespace or across all of them.
#[derive(Clone, Debug)]
pub struct Api {
    client: HttpClient,
    kind: Kind,
    /// `None` for cluster-scoped kinds and for all-namespaces handles.
    namespace: Option<String>,
}

impl HttpClient {
    /// A handle on objects of `kind`. For a namespaced kind, `namespace` selects one namespace
    /// and `None` means all namespaces (list and watch only); cluster-scoped kinds ignore it.
    pub fn api(&self, kind: Kind, namespace: Option<&str>) -> Api {
        Api::new(self.clone(), kind, namespace.map(str::to_owned))
    }

    /// A handle listing and watching `kind` across every namespace.
    pub fn all_namespaces(&self, kind: Kind) -> Api {
        Api::new(self.clone(), kind, None)
    }
}

impl Api {
    pub(crate) fn new(client: HttpClient, kind: Kind, namespace: Option<String>) -> Api {
        let namespace = namespace.filter(|_| kind.namespaced());
        Api {
            client,
            kind,
            namespace,
        }
    }

    /// The kind this handle works on.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The namespace, or `None` for a cluster-scoped kind or an all-namespaces handle.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The client this handle sends through.
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// `/apis/caravan.dev/v1[/namespaces/{ns}]/{plural}`.
    pub fn collection_path(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(
                "/apis/{API_VERSION}/namespaces/{}/{}",
                encode(ns),
                self.kind.plural()
            ),
            None => format!("/apis/{API_VERSION}/{}", self.kind.plural()),
        }
    }

    /// The path of one object; fails on an all-namespaces handle of a namespaced kind.
    pub fn object_path(&self, name: &str) -> Result<String> {
        if self.kind.namespaced() && self.namespace.is_none() {
            return Err(Error::InvalidRequest(format!(
                "a namespace is required to address {} {name:?}",
                self.kind.singular()
            )));
        }
        if name.is_empty() {
            return Err(Error::InvalidRequest(format!(
                "a {} name is required",
                self.kind.singular()
            )));
        }
        Ok(format!("{}/{}", self.collection_path(), encode(name)))
    }

    fn status_path(&self, name: &str) -> Result<String> {
        Ok(format!("{}/status", self.object_path(name)?))
    }

    /// GET one object.
    pub async fn get(&self, name: &str) -> Result<Value> {
        let req = Request::new(Method::GET, self.object_path(name)?).accept(JSON);
        self.client.json(req).await
    }

    /// GET one object, `None` when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<Value>> {
        match self.get(name).await {
            Ok(obj) => Ok(Some(obj)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET one object, decoded into a typed struct such as `caravan_schemas::job::Job`.
    pub async fn get_typed<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        serde_json::from_value(self.get(name).await?).map_err(Error::Decode)
    }

    /// List one page.
    pub async fn list(&self, params: &ListParams) -> Result<WireList> {
        let path = format!("{}{}", self.collection_path(), params.query().finish());
        self.client
            .json(Request::new(Method::GET, path).accept(JSON))
            .await
    }

    /// List every page (following `continue`), returning the items and the resource version
    /// of the first page: watching from it misses nothing.
    pub async fn list_all(&self, params: &ListParams) -> Result<WireList> {
        let mut page = self.list(params).await?;
        let mut next = page.metadata.r#continue.take().filter(|c| !c.is_empty());
        while let Some(token) = next {
            let params = ListParams {
                continue_token: Some(token),
                ..params.clone()
            };
            let more = self.list(&params).await?;
            page.items.extend(more.items);
            next = more.metadata.r#continue.filter(|c| !c.is_empty());
        }
        Ok(page)
    }

    /// POST a new object; its namespace is this handle's.
    pub async fn create(&self, object: &Value, params: &PostParams) -> Result<Value> {
        if self.kind.namespaced() && self.namespace.is_none() {
            return Err(Error::InvalidRequest(format!(
                "a namespace is required to create a {}",
                self.kind.singular()
            )));
        }
        let path = format!("{}{}", self.collection_path(), params.query().finish());
        let req = Request::new(Method::POST, path)
            .json_body(JSON, object)
            .accept(JSON);
        self.client.json(req).await
    }

    /// PUT a whole object; it must carry the `metadata.resourceVersion` it was read at.
    pub async fn replace(&self, name: &str, object: &Value, params: &PostParams) -> Result<Value> {
        let path = format!("{}{}", self.object_path(name)?, params.query().finish());
        self.put(path, object).await
    }

    /// PUT the status subresource.
    pub async fn replace_status(
        &self,
        name: &str,
        object: &Value,
        params: &PostParams,
    ) -> Result<Value> {
        let path = format!("{}{}", self.status_path(name)?, params.query().finish());
        self.put(path, object).await
    }

    async fn put(&self, path: String, object: &Value) -> Result<Value> {
        let req = Request::new(Method::PUT, path)
            .json_body(JSON, object)
            .accept(JSON);
        self.client.json(req).await
    }

    /// PATCH with an RFC 7386 JSON merge patch (`null` removes a field).
    pub async fn patch_merge(
        &self,
        name: &str,
        patch: &Value,
        params: &PatchParams,
    ) -> Result<Value> {
        let path = format!("{}{}", self.object_path(name)?, params.query().finish());
        self.patch(path, MERGE_PATCH, patch).await
    }

    /// PATCH with an RFC 6902 JSON patch: `patch` is the array of operations, applied in
    /// order and all or none (a failed `test` operation fails the whole patch with 422).
    pub async fn patch_json(
        &self,
        name: &str,
        patch: &Value,
        params: &PatchParams,
    ) -> Result<Value> {
        let path = format!("{}{}", self.object_path(name)?, params.query().finish());
        self.patch(path, JSON_PATCH, patch).await
    }

    /// PATCH the status subresource with a JSON merge patch.
    pub async fn patch_status(
        &self,
        name: &str,
        patch: &Value,
        params: &PatchParams,
    ) -> Result<Value> {
        let path = format!("{}{}", self.status_path(name)?, params.query().finish());
        self.patch(path, MERGE_PATCH, patch).await
    }

    /// Server-side apply: the server merges `object` and creates it when absent. A field
    /// manager is required; [`PatchParams::apply`] sets one.
    pub async fn apply(&self, name: &str, object: &Value, params: &PatchParams) -> Result<Value> {
        if params.field_manager.as_deref().unwrap_or("").is_empty() {
            return Err(Error::InvalidRequest(
                "server-side apply needs a field manager".into(),
            ));
        }
        let path = format!("{}{}", self.object_path(name)?, params.query().finish());
        self.patch(path, APPLY_PATCH, object).await
    }

    async fn patch(&self, path: String, content_type: &'static str, body: &Value) -> Result<Value> {
        let req = Request::new(Method::PATCH, path)
            .json_body(content_type, body)
            .accept(JSON);
        self.client.json(req).await
    }

    /// POST `body` to a subresource of one object and decode the answer, e.g. a Job to its
    /// `plan` (`…/jobs/{name}/plan` answers a `caravan_schemas::job_plan::JobPlan`).
    pub async fn post_subresource<T: DeserializeOwned>(
        &self,
        name: &str,
        subresource: &str,
        body: &Value,
    ) -> Result<T> {
        let path = format!("{}/{}", self.object_path(name)?, encode(subresource));
        let req = Request::new(Method::POST, path)
            .json_body(JSON, body)
            .accept(JSON);
        self.client.json(req).await
    }

    /// DELETE one object.
    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<Deleted> {
        let path = format!("{}{}", self.object_path(name)?, params.query().finish());
        let mut req = Request::new(Method::DELETE, path).accept(JSON);
        if let Some(body) = params.body() {
            req = req.json_body(JSON, &body);
        }
        let value: Value = self.client.json(req).await?;
        if value.get("kind").and_then(Value::as_str) == Some("Status") {
            return Ok(Deleted::Status(
                serde_json::from_value(value).map_err(Error::Decode)?,
            ));
        }
        Ok(Deleted::Object(value))
    }

    /// GET one object rendered as a one-row Table.
    pub async fn get_table(&self, name: &str, include: IncludeObject) -> Result<Table> {
        let path = format!(
            "{}?includeObject={}",
            self.object_path(name)?,
            include.as_str()
        );
        self.table(path).await
    }

    /// List one page rendered as a Table.
    pub async fn list_table(&self, params: &ListParams, include: IncludeObject) -> Result<Table> {
        let mut query = params.query();
        query.push("includeObject", include.as_str());
        self.table(format!("{}{}", self.collection_path(), query.finish()))
            .await
    }

    async fn table(&self, path: String) -> Result<Table> {
        let value: Value = self
            .client
            .json(Request::new(Method::GET, path).accept(TABLE_ACCEPT))
            .await?;
        Table::from_response(value).map_err(Error::Decode)
    }

    /// Watch changes after `resource_version` (`""` or `"0"`: current objects first, as
    /// ADDED). The stream ends when the server closes it; an `Error` event with code 410
    /// means the version is too old and the caller must re-list.
    pub async fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WireEvent>>> {
        self.watch_as(params, resource_version, JSON, "").await
    }

    /// Like [`Api::watch`], but each event's object is a one-row Table (column definitions
    /// on the first event only).
    pub async fn watch_table(
        &self,
        params: &WatchParams,
        resource_version: &str,
        include: IncludeObject,
    ) -> Result<BoxStream<'static, Result<WireEvent>>> {
        let extra = format!("&includeObject={}", include.as_str());
        self.watch_as(params, resource_version, TABLE_ACCEPT, &extra)
            .await
    }

    async fn watch_as(
        &self,
        params: &WatchParams,
        resource_version: &str,
        accept: &'static str,
        extra_query: &str,
    ) -> Result<BoxStream<'static, Result<WireEvent>>> {
        let path = format!(
            "{}{}{extra_query}",
            self.collection_path(),
            params.query(resource_version).finish()
        );
        let req = Request::new(Method::GET, path).accept(accept).streaming();
        let (address, resp) = self.client.send(req).await?;
        let chunks = resp.bytes_stream().map(move |chunk| {
            chunk.map_err(|source| Error::Http {
                address: address.clone(),
                source,
            })
        });
        Ok(decode_events(Box::pin(chunks)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> HttpClient {
        HttpClient::new("http://127.0.0.1:1").unwrap()
    }

    #[test]
    fn paths_follow_the_kubernetes_layout() {
        let jobs = client().api(Kind::Job, Some("default"));
        assert_eq!(
            jobs.object_path("web").unwrap(),
            "/apis/caravan.dev/v1/namespaces/default/jobs/web"
        );
        assert_eq!(
            jobs.status_path("web").unwrap(),
            "/apis/caravan.dev/v1/namespaces/default/jobs/web/status"
        );
        let all = client().all_namespaces(Kind::Allocation);
        assert_eq!(all.collection_path(), "/apis/caravan.dev/v1/allocations");
        assert!(all.object_path("a").is_err());
        let nodes = client().api(Kind::Node, Some("ignored"));
        assert_eq!(
            nodes.object_path("n1").unwrap(),
            "/apis/caravan.dev/v1/nodes/n1"
        );
    }
}
