//! The fake client's selectors: the server's own label and field selector grammar
//! (`caravan_schemas::selector`), matched against whole JSON objects.

use std::collections::BTreeMap;

use caravan_schemas::Kind;
use caravan_schemas::selector::{FieldSelector, LabelSelector, SelectorError};
use serde_json::Value;

use crate::client::{ClientError, ListQuery};

/// Both selectors of a list or watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Selector {
    /// Parses the query's selectors as the server does: a malformed selector, or a field the
    /// kind cannot be selected by, is [`ClientError::Invalid`] (the server's 400).
    pub(crate) fn parse(kind: Kind, query: &ListQuery) -> Result<Selector, ClientError> {
        let invalid = |e: SelectorError| ClientError::Invalid(e.0);
        Ok(Selector {
            labels: query
                .label_selector
                .as_deref()
                .map(LabelSelector::parse)
                .transpose()
                .map_err(invalid)?
                .unwrap_or_default(),
            fields: query
                .field_selector
                .as_deref()
                .map(|f| FieldSelector::parse(f, kind))
                .transpose()
                .map_err(invalid)?
                .unwrap_or_default(),
        })
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels: BTreeMap<String, String> = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        self.labels.matches(&labels)
            && self.fields.matches(|path| {
                let pointer = format!("/{}", path.replace('.', "/"));
                object.pointer(&pointer).and_then(Value::as_str)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(labels: Option<&str>, fields: Option<&str>) -> ListQuery {
        ListQuery {
            label_selector: labels.map(str::to_owned),
            field_selector: fields.map(str::to_owned),
            ..ListQuery::default()
        }
    }

    #[test]
    fn labels_and_fields_select_with_the_servers_grammar() {
        let alloc = json!({
            "metadata": {"name": "a", "labels": {"app": "web", "tier": "front"}},
            "spec": {"nodeName": "n1", "jobName": "web"},
        });
        let matches = |l, f| {
            Selector::parse(Kind::Allocation, &query(l, f))
                .unwrap()
                .matches(&alloc)
        };
        assert!(matches(Some("app=web"), Some("spec.nodeName=n1")));
        assert!(matches(Some("app,!zone"), Some("spec.jobName==web")));
        assert!(matches(
            Some("tier in (front,back)"),
            Some("metadata.name!=b")
        ));
        assert!(matches(
            Some("tier notin (back)"),
            Some("status.clientStatus!=running")
        ));
        assert!(!matches(Some("app=api"), None));
        assert!(!matches(None, Some("spec.nodeName=n2")));
        let invalid = |l, f| Selector::parse(Kind::Allocation, &query(l, f));
        assert!(matches!(
            invalid(None, Some("spec.nodeName")),
            Err(ClientError::Invalid(_))
        ));
        assert!(matches!(
            invalid(None, Some("spec.jobVersion=3")),
            Err(ClientError::Invalid(_))
        ));
        assert!(matches!(
            invalid(Some("app in x"), None),
            Err(ClientError::Invalid(_))
        ));
    }
}
