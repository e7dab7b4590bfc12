//! Query parameters of each verb, and the query-string builder they share.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters left unescaped in query values and path segments (RFC 3986 unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub(crate) fn encode(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// Builds `?a=b&c=d`, escaping values.
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(&'static str, String)>);

impl Query {
    pub fn push(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.0.push((key, value.into()));
        self
    }

    pub fn push_opt(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.push(key, v);
        }
        self
    }

    pub fn dry_run(&mut self, dry_run: bool) -> &mut Self {
        if dry_run {
            self.push("dryRun", "All");
        }
        self
    }

    /// The query string with its leading `?`, or empty.
    pub fn finish(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let pairs: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        format!("?{}", pairs.join("&"))
    }
}

/// Parameters of a list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// e.g. `app=web,tier!=cache`.
    pub label_selector: Option<String>,
    /// e.g. `spec.nodeName=n1,status.clientStatus=running`.
    pub field_selector: Option<String>,
    /// Page size; the response carries a continue token when more remain.
    pub limit: Option<u32>,
    /// The token from the previous page's `metadata.continue`.
    pub continue_token: Option<String>,
}

impl ListParams {
    pub(crate) fn query(&self) -> Query {
        let mut q = Query::default();
        q.push_opt("labelSelector", self.label_selector.as_deref())
            .push_opt("fieldSelector", self.field_selector.as_deref());
        if let Some(limit) = self.limit {
            q.push("limit", limit.to_string());
        }
        q.push_opt("continue", self.continue_token.as_deref());
        q
    }
}

/// Parameters of a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    /// Ask the server for periodic BOOKMARK events carrying the current resource version.
    pub allow_bookmarks: bool,
    /// Ask the server to end the stream after this many seconds (the client then resumes).
    pub timeout_seconds: Option<u32>,
    /// Caravan's `progressNotify=true`: a BOOKMARK after every commit this watch sees nothing
    /// of, so the client always knows the revision it is complete up to.
    pub progress_notify: bool,
}

impl Default for WatchParams {
    fn default() -> Self {
        WatchParams {
            label_selector: None,
            field_selector: None,
            allow_bookmarks: true,
            timeout_seconds: Some(290),
            progress_notify: false,
        }
    }
}

impl WatchParams {
    /// Watch parameters with the same selectors as a list.
    pub fn from_list(list: &ListParams) -> WatchParams {
        WatchParams {
            label_selector: list.label_selector.clone(),
            field_selector: list.field_selector.clone(),
            ..WatchParams::default()
        }
    }

    pub(crate) fn query(&self, resource_version: &str) -> Query {
        let mut q = Query::default();
        q.push("watch", "true")
            .push_opt("labelSelector", self.label_selector.as_deref())
            .push_opt("fieldSelector", self.field_selector.as_deref())
            .push_opt("resourceVersion", Some(resource_version));
        if self.allow_bookmarks {
            q.push("allowWatchBookmarks", "true");
        }
        if let Some(t) = self.timeout_seconds {
            q.push("timeoutSeconds", t.to_string());
        }
        if self.progress_notify {
            q.push("progressNotify", "true");
        }
        q
    }
}

/// Parameters of a create or replace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostParams {
    /// Validate and admit, but persist nothing (`dryRun=All`).
    pub dry_run: bool,
    /// The actor recorded for the write.
    pub field_manager: Option<String>,
}

impl PostParams {
    pub(crate) fn query(&self) -> Query {
        let mut q = Query::default();
        q.dry_run(self.dry_run)
            .push_opt("fieldManager", self.field_manager.as_deref());
        q
    }
}

/// Parameters of a patch; `force` only matters to server-side apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchParams {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    /// Server-side apply: take ownership of fields other managers own.
    pub force: bool,
}

impl PatchParams {
    /// Server-side apply as `manager`, forcing conflicts, as `caravan apply --server-side` does.
    pub fn apply(manager: &str) -> PatchParams {
        PatchParams {
            dry_run: false,
            field_manager: Some(manager.to_owned()),
            force: true,
        }
    }

    pub(crate) fn query(&self) -> Query {
        let mut q = Query::default();
        q.dry_run(self.dry_run)
            .push_opt("fieldManager", self.field_manager.as_deref());
        if self.force {
            q.push("force", "true");
        }
        q
    }
}

/// Parameters of a delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteParams {
    pub dry_run: bool,
    /// `Background`, `Foreground` or `Orphan`.
    pub propagation_policy: Option<String>,
    pub grace_period_seconds: Option<u32>,
    /// Delete only while the object has this `resourceVersion` (409 Conflict otherwise).
    pub resource_version: Option<String>,
}

impl DeleteParams {
    pub(crate) fn query(&self) -> Query {
        let mut q = Query::default();
        q.dry_run(self.dry_run);
        if let Some(g) = self.grace_period_seconds {
            q.push("gracePeriodSeconds", g.to_string());
        }
        q
    }

    /// The `DeleteOptions` body, when anything needs one.
    pub(crate) fn body(&self) -> Option<serde_json::Value> {
        if self.propagation_policy.is_none() && self.resource_version.is_none() {
            return None;
        }
        let mut body = serde_json::json!({"kind": "DeleteOptions", "apiVersion": "v1"});
        if let Some(policy) = &self.propagation_policy {
            body["propagationPolicy"] = policy.as_str().into();
        }
        if let Some(rv) = &self.resource_version {
            body["preconditions"] = serde_json::json!({ "resourceVersion": rv });
        }
        Some(body)
    }
}

/// What a Table response's rows carry in `object` (`includeObject=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    /// The server default: metadata only.
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IncludeObject::None => "None",
            IncludeObject::Metadata => "Metadata",
            IncludeObject::Object => "Object",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_options_carry_the_policy_and_the_precondition() {
        assert_eq!(DeleteParams::default().body(), None);
        let params = DeleteParams {
            propagation_policy: Some("Background".into()),
            resource_version: Some("42".into()),
            ..DeleteParams::default()
        };
        assert_eq!(
            params.body(),
            Some(serde_json::json!({
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "propagationPolicy": "Background",
                "preconditions": {"resourceVersion": "42"},
            }))
        );
    }

    #[test]
    fn query_escapes_selectors_and_skips_empty_values() {
        let list = ListParams {
            label_selector: Some("app=web,tier in (a,b)".into()),
            field_selector: Some(String::new()),
            limit: Some(500),
            continue_token: None,
        };
        assert_eq!(
            list.query().finish(),
            "?labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29&limit=500"
        );
        assert_eq!(ListParams::default().query().finish(), "");
    }

    #[test]
    fn watch_query_carries_version_bookmarks_and_timeout() {
        let q = WatchParams::default().query("42").finish();
        assert_eq!(
            q,
            "?watch=true&resourceVersion=42&allowWatchBookmarks=true&timeoutSeconds=290"
        );
    }
}
