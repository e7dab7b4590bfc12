//! Query parameters of resource requests, parsed leniently (empty pairs ignored) as Kubernetes
//! clients send them, and turned into the service layer's typed options.

use std::time::Duration;

use caravan_schemas::Kind;

use super::error::ApiError;
use crate::api::{
    Access, FieldValidation, GetOptions, ListOptions, Selectors, WatchOptions, WriteOptions,
};

/// Every query parameter a resource request understands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub watch: bool,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub allow_watch_bookmarks: bool,
    /// Caravan's `progressNotify=true`: a BOOKMARK after every commit that changed nothing the
    /// watch sees, so a cache built from several watches knows how far each one is complete.
    pub progress_notify: bool,
    pub send_initial_events: bool,
    pub timeout_seconds: Option<u64>,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: Option<String>,
    pub force: bool,
    pub include_object: Option<String>,
    /// What the ACLs left of the request (set by the handler, never parsed).
    pub access: Access,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let mut q = Query::default();
        let Some(raw) = raw else { return Ok(q) };
        for (key, value) in url_pairs(raw) {
            match key.as_str() {
                "watch" => q.watch = parse_bool(&key, &value)?,
                "labelSelector" => q.label_selector = non_empty(value),
                "fieldSelector" => q.field_selector = non_empty(value),
                "limit" => {
                    let n: i64 = value.parse().map_err(|_| bad(&key, &value))?;
                    q.limit = (n > 0).then_some(n as usize);
                }
                "continue" => q.continue_token = non_empty(value),
                "resourceVersion" => q.resource_version = Some(value),
                "allowWatchBookmarks" => q.allow_watch_bookmarks = parse_bool(&key, &value)?,
                "progressNotify" => q.progress_notify = parse_bool(&key, &value)?,
                "sendInitialEvents" => q.send_initial_events = parse_bool(&key, &value)?,
                "timeoutSeconds" => {
                    q.timeout_seconds = Some(value.parse().map_err(|_| bad(&key, &value))?)
                }
                "dryRun" => match value.as_str() {
                    "All" => q.dry_run = true,
                    "" => {}
                    _ => {
                        return Err(ApiError::bad_request(format!(
                            "invalid dry run option {value:?}: only \"All\" is supported"
                        )));
                    }
                },
                "fieldValidation" => {
                    q.field_validation = match value.as_str() {
                        "Strict" | "" => FieldValidation::Strict,
                        "Warn" => FieldValidation::Warn,
                        "Ignore" => FieldValidation::Ignore,
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "fieldValidation must be one of Strict, Warn or Ignore, got {value:?}"
                            )));
                        }
                    }
                }
                "fieldManager" => q.field_manager = non_empty(value),
                "force" => q.force = parse_bool(&key, &value)?,
                "includeObject" => q.include_object = non_empty(value),
                // Accepted and ignored, as documented in docs/api.md.
                _ => {}
            }
        }
        Ok(q)
    }

    /// The resourceVersion as a number; `None` for absent, `""` and `"0"`.
    pub fn resource_version_number(&self) -> Result<Option<u64>, ApiError> {
        match self.resource_version.as_deref() {
            None | Some("") | Some("0") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid resourceVersion {v:?}: not a number"))
            }),
        }
    }

    /// The selectors of a list or watch of `kind`.
    fn selectors(&self, kind: Kind) -> Result<Selectors, ApiError> {
        let labels = self.label_selector.as_deref();
        Ok(
            Selectors::parse(kind, labels, self.field_selector.as_deref()).map(|selectors| {
                Selectors {
                    scope: self.access.scope.clone(),
                    ..selectors
                }
            })?,
        )
    }

    /// The options of a create, replace or patch.
    pub fn write_options(&self) -> WriteOptions {
        WriteOptions {
            dry_run: self.dry_run,
            field_validation: self.field_validation,
            guard: self.access.guard.clone(),
        }
    }

    /// The options of a get.
    pub fn get_options(&self) -> Result<GetOptions, ApiError> {
        Ok(GetOptions {
            resource_version: self.resource_version_number()?,
        })
    }

    /// The options of a list of `kind`.
    pub fn list_options(&self, kind: Kind) -> Result<ListOptions, ApiError> {
        let resource_version = self.resource_version_number()?;
        Ok(ListOptions {
            selectors: self.selectors(kind)?,
            limit: self.limit,
            continue_token: self.continue_token.clone(),
            resource_version,
        })
    }

    /// The options of a watch of `kind`.
    pub fn watch_options(&self, kind: Kind) -> Result<WatchOptions, ApiError> {
        Ok(WatchOptions {
            selectors: self.selectors(kind)?,
            resource_version: self.resource_version_number()?,
            send_initial_events: self.send_initial_events,
            allow_bookmarks: self.allow_watch_bookmarks,
            progress_notify: self.progress_notify,
            timeout: self.timeout_seconds.map(Duration::from_secs),
        })
    }
}

pub(super) fn url_pairs(raw: &str) -> impl Iterator<Item = (String, String)> + '_ {
    raw.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

fn non_empty(v: String) -> Option<String> {
    (!v.is_empty()).then_some(v)
}

pub(super) fn parse_bool(key: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "True" | "" => Ok(true),
        "false" | "0" | "False" => Ok(false),
        _ => Err(bad(key, v)),
    }
}

pub(super) fn bad(key: &str, v: &str) -> ApiError {
    ApiError::bad_request(format!("invalid value {v:?} for query parameter {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_rs_watch_query_with_empty_pair_parses() {
        let q = Query::parse(Some(
            "&watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=12",
        ))
        .unwrap();
        assert!(q.watch && q.allow_watch_bookmarks);
        assert_eq!(q.timeout_seconds, Some(290));
        assert_eq!(q.resource_version_number().unwrap(), Some(12));
    }

    #[test]
    fn selectors_are_percent_decoded() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&limit=500")).unwrap();
        assert_eq!(q.label_selector.as_deref(), Some("app=web,tier in (a)"));
        assert_eq!(q.limit, Some(500));
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(Query::parse(Some("limit=x")).is_err());
        assert!(Query::parse(Some("dryRun=Some")).is_err());
        assert!(Query::parse(Some("fieldValidation=Loose")).is_err());
        assert!(
            Query::parse(Some("resourceVersion=abc"))
                .unwrap()
                .resource_version_number()
                .is_err()
        );
    }
}
