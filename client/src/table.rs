//! The `meta.k8s.io/v1` Table a server renders for `kubectl get`-style output.

use caravan_schemas::ListMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `Accept` header asking for a Table, falling back to plain JSON.
pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io, application/json";

/// Rows of objects with server-chosen columns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    #[serde(default)]
    pub metadata: ListMeta,
    /// Sent on lists and gets, and only on the first event of a watch.
    #[serde(default)]
    pub column_definitions: Vec<TableColumnDefinition>,
    #[serde(default)]
    pub rows: Vec<TableRow>,
}

/// One column: its header and how important it is (`priority > 0` only in wide output).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableColumnDefinition {
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: i32,
}

/// One row: a cell per column, and the object (metadata only unless asked otherwise).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableRow {
    pub cells: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Value>,
}

impl TableRow {
    /// The row object's `metadata.name`.
    pub fn name(&self) -> Option<&str> {
        self.object.as_ref()?.pointer("/metadata/name")?.as_str()
    }

    /// The row object's `metadata.namespace`.
    pub fn namespace(&self) -> Option<&str> {
        self.object
            .as_ref()?
            .pointer("/metadata/namespace")?
            .as_str()
    }
}

impl Table {
    /// Reads a Table response. A server that ignored the Table `Accept` header and sent a
    /// plain object or list gets a one-column NAME table built from it.
    pub fn from_response(value: Value) -> Result<Table, serde_json::Error> {
        if value.get("kind").and_then(Value::as_str) == Some("Table") {
            return serde_json::from_value(value);
        }
        let metadata: ListMeta = value
            .get("metadata")
            .filter(|_| value.get("items").is_some())
            .cloned()
            .map(serde_json::from_value)
            .transpose()?
            .unwrap_or_default();
        let objects = match value.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => vec![value],
        };
        Ok(Table {
            metadata,
            column_definitions: vec![TableColumnDefinition {
                name: "Name".into(),
                type_: "string".into(),
                format: "name".into(),
                description: "Name of the object".into(),
                priority: 0,
            }],
            rows: objects
                .into_iter()
                .map(|o| TableRow {
                    cells: vec![o.pointer("/metadata/name").cloned().unwrap_or(Value::Null)],
                    object: Some(o),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_response_is_decoded() {
        let table = Table::from_response(json!({
            "kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": "7"},
            "columnDefinitions": [{"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}],
            "rows": [{"cells": ["web"], "object": {"metadata": {"name": "web", "namespace": "default"}}}]
        }))
        .unwrap();
        assert_eq!(table.metadata.resource_version, "7");
        assert_eq!(table.rows[0].name(), Some("web"));
        assert_eq!(table.rows[0].namespace(), Some("default"));
    }

    #[test]
    fn a_plain_list_becomes_a_name_table() {
        let table = Table::from_response(json!({
            "kind": "JobList", "metadata": {"resourceVersion": "3"},
            "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]
        }))
        .unwrap();
        assert_eq!(table.metadata.resource_version, "3");
        assert_eq!(table.rows.len(), 2);
        assert_eq!(table.rows[1].cells, vec![json!("b")]);
    }
}
