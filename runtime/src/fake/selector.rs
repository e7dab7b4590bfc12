//! Equality-based label and field selectors for the fake client (`a=b`, `a==b`, `a!=b`, `a`,
//! `!a`; fields as dotted paths such as `spec.nodeName`).

use serde_json::Value;

use crate::client::{ClientError, ListQuery};

/// One selector term.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Term {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

/// A parsed [`ListQuery`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    labels: Vec<Term>,
    fields: Vec<Term>,
}

impl Selector {
    pub(crate) fn parse(query: &ListQuery) -> Result<Selector, ClientError> {
        Ok(Selector {
            labels: parse_terms(query.label_selector.as_deref(), true)?,
            fields: parse_terms(query.field_selector.as_deref(), false)?,
        })
    }

    /// Whether `object` matches every term.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let label = |key: &str| {
            object
                .pointer("/metadata/labels")
                .and_then(|labels| labels.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let field = |path: &str| {
            let pointer = format!("/{}", path.replace('.', "/"));
            object.pointer(&pointer).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        self.labels.iter().all(|t| term_matches(t, &label))
            && self.fields.iter().all(|t| term_matches(t, &field))
    }
}

fn term_matches(term: &Term, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
    match term {
        Term::Equals(key, value) => lookup(key).as_deref() == Some(value),
        // Kubernetes: `a!=b` matches objects without `a` too; a missing field reads as "".
        Term::NotEquals(key, value) => lookup(key).as_deref() != Some(value),
        Term::Exists(key) => lookup(key).is_some(),
        Term::NotExists(key) => lookup(key).is_none(),
    }
}

fn parse_terms(selector: Option<&str>, labels: bool) -> Result<Vec<Term>, ClientError> {
    let Some(selector) = selector else {
        return Ok(Vec::new());
    };
    selector
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| parse_term(t, labels))
        .collect()
}

fn parse_term(term: &str, labels: bool) -> Result<Term, ClientError> {
    let invalid = || ClientError::Invalid(format!("unsupported selector term {term:?}"));
    let (key, value, negated) = if let Some((k, v)) = term.split_once("!=") {
        (k, Some(v), true)
    } else if let Some((k, v)) = term.split_once("==") {
        (k, Some(v), false)
    } else if let Some((k, v)) = term.split_once('=') {
        (k, Some(v), false)
    } else if let Some(k) = term.strip_prefix('!') {
        (k, None, true)
    } else {
        (term, None, false)
    };
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(invalid());
    }
    let key = key.to_owned();
    Ok(match (value.map(str::trim), negated) {
        (Some(v), false) => Term::Equals(key, v.to_owned()),
        (Some(v), true) => Term::NotEquals(key, v.to_owned()),
        (None, _) if !labels => return Err(invalid()),
        (None, false) => Term::Exists(key),
        (None, true) => Term::NotExists(key),
    })
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
    fn labels_and_fields_select_by_equality_and_existence() {
        let alloc = json!({
            "metadata": {"name": "a", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "jobVersion": 3},
        });
        let matches = |l, f| Selector::parse(&query(l, f)).unwrap().matches(&alloc);
        assert!(matches(Some("app=web"), Some("spec.nodeName=n1")));
        assert!(matches(Some("app,!tier"), Some("spec.jobVersion==3")));
        assert!(matches(Some("tier!=cache"), Some("metadata.name!=b")));
        assert!(!matches(Some("app=api"), None));
        assert!(!matches(None, Some("spec.nodeName=n2")));
        assert!(Selector::parse(&query(None, Some("spec.nodeName"))).is_err());
        assert!(Selector::parse(&query(Some("app in (a,b)"), None)).is_err());
    }
}
