use std::path::PathBuf;

use serde_json::Value;

use super::*;

fn committed_path(kind: Kind) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("json")
        .join(format!("{}.json", kind.singular()))
}

fn pretty(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema serializes");
    text.push('\n');
    text
}

#[test]
fn committed_schemas_match_the_types() {
    let update = std::env::var_os("CARAVAN_UPDATE_SCHEMAS").is_some_and(|v| v == "1");
    let mut drifted = Vec::new();
    for kind in Kind::ALL {
        let path = committed_path(kind);
        let generated = pretty(&object_schema(kind));
        if update {
            std::fs::create_dir_all(path.parent().expect("json dir")).expect("create schemas/json");
            std::fs::write(&path, &generated).expect("write schema");
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != generated {
            drifted.push(path.display().to_string());
        }
    }
    assert!(
        drifted.is_empty(),
        "the committed JSON Schemas differ from the types: {}\n\
         regenerate them with `CARAVAN_UPDATE_SCHEMAS=1 cargo nextest run -p caravan-schemas \
         committed_schemas_match_the_types` and commit the result",
        drifted.join(", ")
    );
}

/// Every subschema of `value`, with its JSON pointer.
fn walk<'a>(value: &'a Value, pointer: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((pointer.clone(), value));
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                walk(v, format!("{pointer}/{k}"), out);
            }
        }
        Value::Array(list) => {
            for (i, v) in list.iter().enumerate() {
                walk(v, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn object_schemas_are_closed_and_never_null() {
    for kind in Kind::ALL {
        let schema = object_schema(kind);
        let mut nodes = Vec::new();
        walk(&schema, String::new(), &mut nodes);
        for (pointer, node) in nodes {
            let Some(object) = node.as_object() else {
                continue;
            };
            if object.get("properties").is_some_and(Value::is_object)
                && !pointer.ends_with("/properties")
            {
                assert_eq!(
                    object.get("additionalProperties"),
                    Some(&Value::Bool(false)),
                    "{kind}: {pointer} is open"
                );
            }
            if let Some(Value::Array(types)) = object.get("type") {
                assert!(
                    !types.contains(&Value::from("null")),
                    "{kind}: {pointer} allows null"
                );
            }
            assert!(
                object.get("type") != Some(&Value::from("null")),
                "{kind}: {pointer} is null"
            );
        }
        assert_eq!(schema["properties"]["kind"]["const"], kind.name());
        assert_eq!(
            schema["properties"]["apiVersion"]["const"],
            crate::API_VERSION
        );
        let required = schema["required"].as_array().expect("required");
        assert!(required.contains(&Value::from("metadata")), "{kind}");
    }
}

#[test]
fn free_form_maps_stay_open() {
    let schema = object_schema(Kind::Job);
    let task = &schema["$defs"]["Task"]["properties"];
    assert_eq!(task["config"]["additionalProperties"], Value::Bool(true));
    assert_eq!(task["env"]["additionalProperties"]["type"], "string");
    let meta = &schema["$defs"]["ObjectMeta"]["properties"];
    assert_eq!(meta["labels"]["additionalProperties"]["type"], "string");
}

#[test]
fn openapi_document_marks_every_kind_and_write() {
    let doc = openapi_v3_document();
    assert_eq!(doc["openapi"], "3.0.0");
    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components");
    for kind in Kind::ALL {
        let name = format!("dev.caravan.v1.{}", kind.name());
        let gvk = &schemas[&name]["x-kubernetes-group-version-kind"][0];
        assert_eq!(gvk["group"], "caravan.dev", "{name}");
        assert_eq!(gvk["version"], "v1", "{name}");
        assert_eq!(gvk["kind"], kind.name(), "{name}");
        assert!(schemas.contains_key(&format!("dev.caravan.v1.{}", kind.list_name())));
    }
    let mut writes = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (verb, op) in item.as_object().expect("path item") {
            if verb == "parameters" {
                continue;
            }
            assert!(op["x-kubernetes-action"].is_string(), "{verb} {path}");
            assert_eq!(
                op["x-kubernetes-group-version-kind"]["group"], "caravan.dev",
                "{verb} {path}"
            );
            if matches!(verb.as_str(), "post" | "put" | "patch") {
                writes += 1;
                let names: Vec<&str> = op["parameters"]
                    .as_array()
                    .expect("parameters")
                    .iter()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                assert!(names.contains(&"fieldValidation"), "{verb} {path}");
                assert!(names.contains(&"dryRun"), "{verb} {path}");
            }
            if verb == "patch" {
                let content = &op["requestBody"]["content"];
                assert!(
                    content.get("application/merge-patch+json").is_some(),
                    "{path}"
                );
                assert!(
                    content.get("application/apply-patch+yaml").is_some(),
                    "{path}"
                );
            }
        }
    }
    assert!(writes > 0);
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/apis/caravan.dev/v1/namespaces/{namespace}/jobs",
        "/apis/caravan.dev/v1/namespaces/{namespace}/jobs/{name}",
        "/apis/caravan.dev/v1/namespaces/{namespace}/jobs/{name}/status",
        "/apis/caravan.dev/v1/jobs",
        "/apis/caravan.dev/v1/nodes/{name}/status",
        "/apis/caravan.dev/v1/namespaces/{name}",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert!(!paths.contains_key("/apis/caravan.dev/v1/namespaces/{name}/status"));
}

#[test]
fn openapi_document_is_openapi_3_0() {
    let doc = openapi_v3_document();
    let mut nodes = Vec::new();
    walk(&doc, String::new(), &mut nodes);
    for (pointer, node) in nodes {
        let Some(object) = node.as_object() else {
            continue;
        };
        if pointer.ends_with("/properties")
            || pointer.ends_with("/paths")
            || pointer.ends_with("/content")
        {
            continue;
        }
        for banned in ["$schema", "$defs", "const", "prefixItems"] {
            assert!(!object.contains_key(banned), "{banned} at {pointer}");
        }
        if let Some(reference) = object.get("$ref") {
            assert_eq!(object.len(), 1, "$ref with siblings at {pointer}");
            let target = reference
                .as_str()
                .expect("ref")
                .trim_start_matches("#/components/schemas/");
            assert!(
                doc["components"]["schemas"].get(target).is_some(),
                "dangling {reference} at {pointer}"
            );
        }
        if let Some(ty) = object.get("type") {
            assert!(
                ty.is_string() || pointer.contains("/properties/type"),
                "type {ty} at {pointer}"
            );
        }
    }
}
