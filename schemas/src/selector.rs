//! Kubernetes label and field selectors: parsed once (a `SelectorError` says why a selector is
//! malformed) and matched against labels and field values. The API server and the in-memory
//! fake client both use these, so a controller tested against the fake sees the server's
//! grammar.

use std::collections::BTreeMap;

use crate::Kind;

/// Why a selector could not be parsed; the message is the one Kubernetes gives.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl LabelRequirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            LabelRequirement::Equals(k, v) => labels.get(k) == Some(v),
            LabelRequirement::NotEquals(k, v) => labels.get(k) != Some(v),
            LabelRequirement::In(k, vs) => labels.get(k).is_some_and(|x| vs.contains(x)),
            LabelRequirement::NotIn(k, vs) => labels.get(k).is_none_or(|x| !vs.contains(x)),
            LabelRequirement::Exists(k) => labels.contains_key(k),
            LabelRequirement::NotExists(k) => !labels.contains_key(k),
        }
    }
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<LabelRequirement>);

impl LabelSelector {
    pub fn parse(s: &str) -> Result<LabelSelector, SelectorError> {
        let err = |m: &str| SelectorError(format!("unable to parse requirement: {m}"));
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            if let Some(key) = part.strip_prefix('!') {
                reqs.push(LabelRequirement::NotExists(valid_key(key.trim())?));
                continue;
            }
            if let Some((k, v)) = part.split_once("!=") {
                reqs.push(LabelRequirement::NotEquals(
                    valid_key(k.trim())?,
                    valid_value(v.trim())?,
                ));
            } else if let Some((k, v)) = part.split_once("==") {
                reqs.push(LabelRequirement::Equals(
                    valid_key(k.trim())?,
                    valid_value(v.trim())?,
                ));
            } else if let Some((k, v)) = part.split_once('=') {
                reqs.push(LabelRequirement::Equals(
                    valid_key(k.trim())?,
                    valid_value(v.trim())?,
                ));
            } else if let Some((k, set)) = split_set_op(part, " notin ") {
                reqs.push(LabelRequirement::NotIn(
                    valid_key(k)?,
                    parse_set(set).ok_or_else(|| err(part))?,
                ));
            } else if let Some((k, set)) = split_set_op(part, " in ") {
                reqs.push(LabelRequirement::In(
                    valid_key(k)?,
                    parse_set(set).ok_or_else(|| err(part))?,
                ));
            } else {
                reqs.push(LabelRequirement::Exists(valid_key(part)?));
            }
        }
        Ok(LabelSelector(reqs))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0usize, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn split_set_op<'a>(part: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let i = part.find(op)?;
    Some((part[..i].trim(), part[i + op.len()..].trim()))
}

fn parse_set(s: &str) -> Option<Vec<String>> {
    let inner = s.strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

fn valid_key(k: &str) -> Result<String, SelectorError> {
    let ok = !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(k.to_string())
    } else {
        Err(SelectorError(format!(
            "unable to parse requirement: invalid label key {k:?}"
        )))
    }
}

fn valid_value(v: &str) -> Result<String, SelectorError> {
    let ok = v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(v.to_string())
    } else {
        Err(SelectorError(format!(
            "unable to parse requirement: invalid label value {v:?}"
        )))
    }
}

/// One field requirement: `path=value` or `path!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub path: String,
    pub value: String,
    pub equals: bool,
}

/// A parsed `fieldSelector` over the fields a kind supports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(pub Vec<FieldRequirement>);

impl FieldSelector {
    pub fn parse(s: &str, kind: Kind) -> Result<FieldSelector, SelectorError> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, value, equals) = if let Some((p, v)) = part.split_once("!=") {
                (p, v, false)
            } else if let Some((p, v)) = part.split_once("==") {
                (p, v, true)
            } else if let Some((p, v)) = part.split_once('=') {
                (p, v, true)
            } else {
                return Err(SelectorError(format!(
                    "invalid field selector {part:?}: expected field=value or field!=value"
                )));
            };
            let path = path.trim();
            let supported = matches!(path, "metadata.name" | "metadata.namespace")
                || kind.selectable_fields().contains(&path);
            if !supported {
                return Err(SelectorError(format!("field label not supported: {path}")));
            }
            reqs.push(FieldRequirement {
                path: path.to_string(),
                value: value.trim().to_string(),
                equals,
            });
        }
        Ok(FieldSelector(reqs))
    }

    /// Whether an object matches, `field` giving the value of a field path (`None` when the
    /// object has none, which compares as the empty string, as in Kubernetes).
    pub fn matches<'a>(&self, field: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0
            .iter()
            .all(|r| (field(&r.path).unwrap_or("") == r.value) == r.equals)
    }

    /// The value of an equality requirement on `path`, used to answer from an index.
    pub fn equality(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.equals && r.path == path)
            .map(|r| r.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_label_operator_matches_as_kubernetes() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let cases = [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("tier in (front, back)", true),
            ("tier notin (front)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web,tier in (back)", false),
            ("app=web,tier in (back,front),!gone", true),
            ("", true),
        ];
        for (sel, want) in cases {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&l),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn malformed_label_selectors_are_rejected() {
        for bad in ["app in x", "a b c", "app=(x)", "=v"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_selectors_only_accept_supported_fields() {
        assert!(FieldSelector::parse("spec.nodeName=n1", Kind::Allocation).is_ok());
        assert!(FieldSelector::parse("status.clientStatus!=running", Kind::Allocation).is_ok());
        assert!(FieldSelector::parse("metadata.name=x", Kind::Job).is_ok());
        assert!(FieldSelector::parse("spec.nodeName=n1", Kind::Job).is_err());
        assert!(FieldSelector::parse("nonsense", Kind::Job).is_err());
        let f = FieldSelector::parse("spec.nodeName=n1", Kind::Allocation).unwrap();
        assert_eq!(f.equality("spec.nodeName"), Some("n1"));
        assert!(f.matches(|p| (p == "spec.nodeName").then_some("n1")));
        assert!(!f.matches(|_| None));
    }
}
