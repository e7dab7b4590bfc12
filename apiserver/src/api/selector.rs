//! Label and field selectors with Kubernetes syntax.

use std::sync::Arc;

use caravan_schemas::Kind;
pub use caravan_schemas::selector::{FieldSelector, LabelSelector};

use super::error::Error;
use super::scope::Scope;
use crate::store::StoredObject;

/// Both selectors of a list or watch.
#[derive(Clone, Debug, Default)]
pub struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// What the caller may see (ACLs); everything when `None`.
    pub scope: Option<Arc<Scope>>,
}

impl Selectors {
    pub fn parse(kind: Kind, labels: Option<&str>, fields: Option<&str>) -> Result<Self, Error> {
        let bad_request = |e: caravan_schemas::selector::SelectorError| Error::BadRequest(e.0);
        Ok(Selectors {
            labels: labels
                .map(LabelSelector::parse)
                .transpose()
                .map_err(bad_request)?
                .unwrap_or_default(),
            fields: fields
                .map(|f| FieldSelector::parse(f, kind))
                .transpose()
                .map_err(bad_request)?
                .unwrap_or_default(),
            scope: None,
        })
    }

    pub fn matches(&self, obj: &StoredObject) -> bool {
        self.labels.matches(&obj.labels)
            && self.fields.matches(|path| obj.field(path))
            && self.scope.as_ref().is_none_or(|scope| scope.admits(obj))
    }
}
