//! JSON Schemas (draft 2020-12) generated from the types, committed under `schemas/json/`.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::{API_VERSION, Kind};

pub use crate::openapi::{COMPONENT_PREFIX, openapi_v3_document};

/// The JSON Schema (draft 2020-12) of a whole object of `kind`, with `$defs`.
///
/// Optional fields do not accept `null` (admission drops nulls first), every object with
/// `properties` is closed with `additionalProperties: false` (free-form maps stay open), and
/// `apiVersion` and `kind` are constants.
pub fn object_schema(kind: Kind) -> Value {
    let mut schema = match kind {
        Kind::Namespace => root::<crate::Namespace>(),
        Kind::Node => root::<crate::Node>(),
        Kind::Job => root::<crate::Job>(),
        Kind::Evaluation => root::<crate::Evaluation>(),
        Kind::Allocation => root::<crate::Allocation>(),
        Kind::Deployment => root::<crate::Deployment>(),
        Kind::ServiceRegistration => root::<crate::ServiceRegistration>(),
        Kind::AclPolicy => root::<crate::AclPolicy>(),
        Kind::AclToken => root::<crate::AclToken>(),
        Kind::JobVersion => root::<crate::JobVersion>(),
    };
    tidy(&mut schema);
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        properties.insert(
            "apiVersion".into(),
            json!({
                "description": "Versioned schema of this object: `caravan.dev/v1`.",
                "type": "string",
                "const": API_VERSION,
            }),
        );
        properties.insert(
            "kind".into(),
            json!({
                "description": format!("Kind of this object: `{}`.", kind.name()),
                "type": "string",
                "const": kind.name(),
            }),
        );
    }
    sorted(schema)
}

fn root<T: JsonSchema>() -> Value {
    SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// Applies the schema rules to every subschema of `schema`, in place.
fn tidy(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    drop_null(object);
    if object.contains_key("properties") && !object.contains_key("additionalProperties") {
        object.insert("additionalProperties".into(), Value::Bool(false));
    }
    for_each_subschema(object, tidy);
}

/// Calls `f` on every direct subschema of a schema object.
pub(crate) fn for_each_subschema(object: &mut Map<String, Value>, mut f: impl FnMut(&mut Value)) {
    for (key, value) in object.iter_mut() {
        match key.as_str() {
            "properties" | "$defs" | "patternProperties" => {
                if let Some(map) = value.as_object_mut() {
                    map.values_mut().for_each(&mut f);
                }
            }
            "anyOf" | "allOf" | "oneOf" | "prefixItems" => {
                if let Some(list) = value.as_array_mut() {
                    list.iter_mut().for_each(&mut f);
                }
            }
            "items" | "additionalProperties" | "not" | "propertyNames" => f(value),
            _ => {}
        }
    }
}

/// Removes the `null` alternative schemars adds for `Option<T>`.
fn drop_null(object: &mut Map<String, Value>) {
    let is_null = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(options)) = object.get_mut("enum") {
        options.retain(|o| !o.is_null());
    }
    if let Some(Value::Array(options)) = object.get_mut("anyOf")
        && options.iter().any(is_null)
    {
        options.retain(|o| !is_null(o));
        if options.len() == 1
            && let Some(Value::Object(only)) = object
                .remove("anyOf")
                .and_then(|mut a| a.as_array_mut().and_then(|a| a.pop()))
        {
            for (key, value) in only {
                object.entry(key).or_insert(value);
            }
        }
    }
}

/// Rebuilds every object with its keys in sorted order (stable output whatever the map type).
pub(crate) fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(list) => Value::Array(list.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests;
