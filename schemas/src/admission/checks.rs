//! Semantic checks shared by every kind: names, labels, durations; and the error collector.

use std::collections::{BTreeMap, HashSet};

use crate::admission::{FieldError, FieldErrorKind};
use crate::duration::parse_admitted_duration;
use crate::job::valid_task_name;
use crate::limits::{GENERATED_NAME_SUFFIX_LEN, MAX_LABEL_NAME_LEN, MAX_NAME_LEN};
use crate::meta::ObjectMeta;

/// What a kind's `metadata.name` must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// A DNS-1123 label (no dots), at most [`MAX_LABEL_NAME_LEN`] characters.
    Label,
    /// A DNS-1123 subdomain of at most [`MAX_LABEL_NAME_LEN`] characters: a name that
    /// becomes a label value (a Job's, in `caravan.dev/job`).
    LabelValue,
    /// A DNS-1123 subdomain, at most [`MAX_NAME_LEN`] characters.
    Subdomain,
}

impl NameRule {
    /// The longest name allowed.
    pub(crate) fn max_len(self) -> usize {
        match self {
            NameRule::Label | NameRule::LabelValue => MAX_LABEL_NAME_LEN,
            NameRule::Subdomain => MAX_NAME_LEN,
        }
    }

    /// Why `name` does not follow the rule, if it does not.
    pub(crate) fn problem(self, name: &str) -> Option<String> {
        match self {
            NameRule::Label => dns1123_label(name),
            NameRule::LabelValue => subdomain_of_at_most(name, MAX_LABEL_NAME_LEN),
            NameRule::Subdomain => dns1123_subdomain(name),
        }
    }
}

/// Collects every failing field of one object.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    pub(crate) errors: Vec<FieldError>,
}

impl Checks {
    pub(crate) fn push(
        &mut self,
        field: impl Into<String>,
        kind: FieldErrorKind,
        message: impl Into<String>,
    ) {
        self.errors.push(FieldError {
            field: field.into(),
            kind,
            message: message.into(),
        });
    }

    pub(crate) fn invalid(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(field, FieldErrorKind::Invalid, message);
    }

    /// Checks that an optional duration string parses and is at most
    /// [`MAX_DURATION`](crate::limits::MAX_DURATION).
    pub(crate) fn duration(&mut self, field: impl Into<String>, value: Option<&str>) {
        if let Some(value) = value
            && let Err(e) = parse_admitted_duration(value)
        {
            self.invalid(field, e.to_string());
        }
    }

    /// Checks that an unsigned amount is at most `max`.
    pub(crate) fn at_most(&mut self, field: impl Into<String>, value: Option<u64>, max: i64) {
        if let Some(value) = value
            && u64::try_from(max).is_ok_and(|max| value > max)
        {
            self.invalid(field, format!("must be between 0 and {max}, got {value}"));
        }
    }

    /// Checks that a list has at most `max` items.
    pub(crate) fn max_items(&mut self, field: impl Into<String>, len: usize, max: usize) {
        if len > max {
            self.push(
                field,
                FieldErrorKind::TooLong,
                format!("must have at most {max} items, got {len}"),
            );
        }
    }

    /// Checks the name of a task group or task (see [`valid_task_name`]).
    pub(crate) fn task_name(&mut self, field: impl Into<String>, name: &str) {
        if let Err(problem) = valid_task_name(name) {
            self.invalid(field, problem);
        }
    }

    /// Checks that an integer lies in `min..=max`.
    pub(crate) fn range(
        &mut self,
        field: impl Into<String>,
        value: Option<i64>,
        min: i64,
        max: i64,
    ) {
        if let Some(value) = value
            && !(min..=max).contains(&value)
        {
            self.invalid(
                field,
                format!("must be between {min} and {max}, got {value}"),
            );
        }
    }

    /// Reports every name that appears twice, at `{list}[i].name`.
    pub(crate) fn unique_names<'a>(
        &mut self,
        list: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) {
        let mut seen = HashSet::new();
        for (i, name) in names.into_iter().enumerate() {
            if !seen.insert(name) {
                self.push(
                    format!("{list}[{i}].name"),
                    FieldErrorKind::Duplicate,
                    format!("duplicate name {name:?}"),
                );
            }
        }
    }

    /// Checks `metadata`: the name (and the `generateName` it may be made from), namespace,
    /// labels and annotations.
    pub(crate) fn metadata(&mut self, meta: &ObjectMeta, rule: NameRule) {
        if let Some(name) = &meta.name
            && let Some(problem) = rule.problem(name)
        {
            self.invalid("metadata.name", problem);
        }
        if let Some(prefix) = &meta.generate_name {
            // The server makes a name of the prefix and five characters: the name must fit.
            let max = rule.max_len() - GENERATED_NAME_SUFFIX_LEN;
            if prefix.len() > max {
                self.invalid(
                    "metadata.generateName",
                    format!(
                        "must be no more than {max} characters, got {}: the server adds \
                         {GENERATED_NAME_SUFFIX_LEN} to make a name of at most {}",
                        prefix.len(),
                        rule.max_len()
                    ),
                );
            }
        }
        if let Some(namespace) = &meta.namespace
            && let Some(problem) = dns1123_label(namespace)
        {
            self.invalid("metadata.namespace", problem);
        }
        self.labels(&meta.labels);
        for key in meta.annotations.keys() {
            if let Some(problem) = qualified_name(key) {
                self.invalid(format!("metadata.annotations[{key}]"), problem);
            }
        }
    }

    fn labels(&mut self, labels: &BTreeMap<String, String>) {
        for (key, value) in labels {
            if let Some(problem) = qualified_name(key) {
                self.invalid(format!("metadata.labels[{key}]"), problem);
            }
            if let Some(problem) = label_value(value) {
                self.invalid(format!("metadata.labels[{key}]"), problem);
            }
        }
    }
}

/// Why `s` is not a DNS-1123 label (lowercase alphanumerics and `-`, ≤ 63), if it is not.
pub(crate) fn dns1123_label(s: &str) -> Option<String> {
    if s.len() > MAX_LABEL_NAME_LEN {
        return Some(format!(
            "must be no more than {MAX_LABEL_NAME_LEN} characters, got {}",
            s.len()
        ));
    }
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    (!ok).then(|| {
        format!(
            "{s:?} is not a valid DNS-1123 label: lowercase alphanumeric characters or '-', \
             starting and ending with an alphanumeric character"
        )
    })
}

/// Why `s` is not a DNS-1123 subdomain (dot-separated labels, ≤ 253), if it is not.
pub(crate) fn dns1123_subdomain(s: &str) -> Option<String> {
    subdomain_of_at_most(s, MAX_NAME_LEN)
}

/// [`dns1123_subdomain`] with a lower length limit.
fn subdomain_of_at_most(s: &str, max: usize) -> Option<String> {
    if s.len() > max {
        return Some(format!(
            "must be no more than {max} characters, got {}",
            s.len()
        ));
    }
    let ok = !s.is_empty()
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    (!ok).then(|| {
        format!(
            "{s:?} is not a valid DNS-1123 subdomain: lowercase alphanumeric characters, '-' or '.', \
             starting and ending with an alphanumeric character"
        )
    })
}

/// Why `s` is not a Kubernetes qualified name (`[prefix/]name`), if it is not.
pub(crate) fn qualified_name(s: &str) -> Option<String> {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    if let Some(prefix) = prefix
        && let Some(problem) = dns1123_subdomain(prefix)
    {
        return Some(format!("prefix part {problem}"));
    }
    if name.is_empty() {
        return Some("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Some(format!(
            "name part must be no more than 63 characters, got {}",
            name.len()
        ));
    }
    (!is_label_token(name)).then(|| {
        format!(
            "name part {name:?} must consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character"
        )
    })
}

/// Why `s` is not a valid label value (empty, or a ≤ 63 character token), if it is not.
pub(crate) fn label_value(s: &str) -> Option<String> {
    if s.len() > 63 {
        return Some(format!(
            "value must be no more than 63 characters, got {}",
            s.len()
        ));
    }
    (!s.is_empty() && !is_label_token(s)).then(|| {
        format!(
            "value {s:?} must consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character"
        )
    })
}

fn is_label_token(s: &str) -> bool {
    let bytes = s.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    first.is_ascii_alphanumeric()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kubernetes_rules() {
        assert_eq!(dns1123_label("web-1"), None);
        assert!(dns1123_label("Web").is_some());
        assert!(dns1123_label("a.b").is_some());
        assert!(dns1123_label(&"a".repeat(64)).is_some());
        assert_eq!(dns1123_subdomain("web.example-1"), None);
        assert!(dns1123_subdomain("web..x").is_some());
        assert!(dns1123_subdomain("-web").is_some());
        assert_eq!(qualified_name("app.kubernetes.io/name"), None);
        assert_eq!(qualified_name("App_1"), None);
        assert!(qualified_name("Bad.Prefix/x").is_some());
        assert!(qualified_name("x/").is_some());
        assert_eq!(label_value(""), None);
        assert!(label_value("-x").is_some());
    }
}
