//! The OpenAPI 3.0 document of `caravan.dev/v1`, served at `/openapi/v3/apis/caravan.dev/v1`.

pub(crate) mod job_plan;

use serde_json::{Map, Value, json};

use crate::schema::{for_each_subschema, object_schema, sorted};
use crate::{API_VERSION, GROUP, Kind, VERSION};

/// Prefix of every component name, as Kubernetes names them by reversed group.
pub const COMPONENT_PREFIX: &str = "dev.caravan.v1.";

/// The OpenAPI 3.0 document for group-version `caravan.dev/v1`: a component schema per kind
/// (with `x-kubernetes-group-version-kind`), per list and per nested type, and every path and
/// operation the API server serves, as `kubectl explain` and `kubectl apply` read them.
pub fn openapi_v3_document() -> Value {
    let mut schemas = Map::new();
    for kind in Kind::ALL {
        let mut schema = object_schema(kind);
        if let Some(Value::Object(defs)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) {
            for (name, mut def) in defs {
                to_openapi(&mut def);
                schemas.insert(component(&name), def);
            }
        }
        if let Some(object) = schema.as_object_mut() {
            object.remove("$schema");
            object.remove("title");
            object.insert("x-kubernetes-group-version-kind".into(), json!([gvk(kind)]));
        }
        to_openapi(&mut schema);
        schemas.insert(component(kind.name()), schema);
        schemas.insert(component(&kind.list_name()), list_schema(kind));
    }
    schemas.insert(component("ListMeta"), list_meta_schema());
    schemas.insert(component("Status"), status_schema());
    schemas.extend(job_plan::openapi_components());
    schemas.insert(
        component("Patch"),
        json!({
            "description": "A patch: a JSON merge patch or a server-side apply configuration.",
            "type": "object",
        }),
    );

    let mut paths = Map::new();
    for kind in Kind::ALL {
        add_paths(&mut paths, kind);
    }
    paths.extend([job_plan::openapi_path()]);
    sorted(json!({
        "openapi": "3.0.0",
        "info": {"title": "Caravan", "version": "v1"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn component(name: &str) -> String {
    format!("{COMPONENT_PREFIX}{name}")
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{}", component(name))})
}

fn gvk(kind: Kind) -> Value {
    json!({"group": GROUP, "version": VERSION, "kind": kind.name()})
}

/// Rewrites a draft 2020-12 schema into an OpenAPI 3.0 schema object.
fn to_openapi(schema: &mut Value) {
    if let Value::Bool(_) = schema {
        *schema = json!({});
        return;
    }
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    object.remove("$schema");
    if let Some(constant) = object.remove("const") {
        object.insert("enum".into(), json!([constant]));
    }
    if let Some(Value::String(target)) = object.get("$ref")
        && let Some(name) = target.strip_prefix("#/$defs/")
    {
        let name = name.to_string();
        let rewritten = reference(&name);
        if object.len() == 1 {
            *schema = rewritten;
            return;
        }
        object.remove("$ref");
        object.insert("allOf".into(), json!([rewritten]));
    }
    if object.get("additionalProperties") == Some(&Value::Bool(true)) {
        object.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            Value::Bool(true),
        );
    }
    for_each_subschema(object, |sub| {
        // `additionalProperties: true` is valid OpenAPI 3.0; other boolean schemas are not.
        if !sub.is_boolean() || sub == &Value::Bool(false) {
            to_openapi(sub);
        }
    });
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        for value in properties.values_mut() {
            if value.is_boolean() {
                *value = json!({});
            }
        }
    }
    if let Some(items) = object.get_mut("items")
        && items.is_boolean()
    {
        *items = json!({});
    }
}

fn list_schema(kind: Kind) -> Value {
    json!({
        "description": format!("A list of {} objects.", kind.name()),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "Versioned schema of this object: `caravan.dev/v1`.",
                "type": "string",
                "enum": [API_VERSION],
            },
            "kind": {
                "description": format!("Kind of this object: `{}`.", kind.list_name()),
                "type": "string",
                "enum": [kind.list_name()],
            },
            "metadata": {
                "description": "Standard list metadata.",
                "allOf": [reference("ListMeta")],
            },
            "items": {
                "description": format!("The {} objects.", kind.name()),
                "type": "array",
                "items": reference(kind.name()),
            },
        },
        "x-kubernetes-group-version-kind": [{"group": GROUP, "version": VERSION, "kind": kind.list_name()}],
    })
}

fn list_meta_schema() -> Value {
    json!({
        "description": "Metadata of a list response.",
        "type": "object",
        "properties": {
            "resourceVersion": {"description": "Revision the list was read at.", "type": "string"},
            "continue": {"description": "Token for the next page, if the list was truncated by `limit`.", "type": "string"},
            "remainingItemCount": {"description": "Number of items left after this page, when known.", "type": "integer", "format": "int64"},
        },
    })
}

fn status_schema() -> Value {
    json!({
        "description": "The result of an operation that returns no object, and the body of every error.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"allOf": [reference("ListMeta")]},
            "status": {"description": "`Success` or `Failure`.", "type": "string"},
            "message": {"description": "Human-readable description of the result.", "type": "string"},
            "reason": {"description": "Machine-readable reason, e.g. `NotFound` or `Invalid`.", "type": "string"},
            "code": {"description": "HTTP status code.", "type": "integer", "format": "int32"},
            "details": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "group": {"type": "string"},
                    "kind": {"type": "string"},
                    "uid": {"type": "string"},
                    "retryAfterSeconds": {"type": "integer", "format": "int32"},
                    "causes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "reason": {"type": "string"},
                                "message": {"type": "string"},
                                "field": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
        "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Status"}],
    })
}

/// One HTTP verb of a path, described for [`operation`].
struct Op {
    action: &'static str,
    id: String,
    description: String,
    body: Option<&'static str>,
    response: String,
}

fn add_paths(paths: &mut Map<String, Value>, kind: Kind) {
    let base = format!("/apis/{GROUP}/{VERSION}");
    let plural = kind.plural();
    let name = kind.name();
    let (scope, prefix) = if kind.namespaced() {
        (
            "Namespaced",
            format!("{base}/namespaces/{{namespace}}/{plural}"),
        )
    } else {
        ("", format!("{base}/{plural}"))
    };
    let list = kind.list_name();
    let op = |action, verb: &str, what: &str, body, response: &str| Op {
        action,
        id: format!("{verb}CaravanDevV1{scope}{what}"),
        description: String::new(),
        body,
        response: response.to_string(),
    };

    let mut collection = Map::new();
    let mut o = op("list", "list", name, None, &list);
    o.description = format!("list or watch objects of kind {name}");
    collection.insert("get".into(), operation(kind, o));
    if kind.client_creatable() {
        let mut o = op("post", "create", name, Some("json"), name);
        o.description = format!("create a {name}");
        collection.insert("post".into(), operation(kind, o));
    }
    paths.insert(prefix.clone(), path_item(kind, collection, false));

    let mut item = Map::new();
    let mut o = op("get", "read", name, None, name);
    o.description = format!("read the specified {name}");
    item.insert("get".into(), operation(kind, o));
    // Objects only the servers write (JobVersions) are read-only here, their status aside.
    if kind.client_writable() {
        let mut o = op("put", "replace", name, Some("json"), name);
        o.description = format!("replace the specified {name}");
        item.insert("put".into(), operation(kind, o));
        let mut o = op("patch", "patch", name, Some("patch"), name);
        o.description = format!("partially update the specified {name}");
        item.insert("patch".into(), operation(kind, o));
        let mut o = op("delete", "delete", name, None, name);
        o.description = format!("delete a {name}");
        item.insert("delete".into(), operation(kind, o));
    }
    paths.insert(format!("{prefix}/{{name}}"), path_item(kind, item, true));

    if kind.has_status() {
        let what = format!("{name}Status");
        let mut status = Map::new();
        let mut o = op("get", "read", &what, None, name);
        o.description = format!("read status of the specified {name}");
        status.insert("get".into(), operation(kind, o));
        if kind.client_writes_status() {
            let mut o = op("put", "replace", &what, Some("json"), name);
            o.description = format!("replace status of the specified {name}");
            status.insert("put".into(), operation(kind, o));
            let mut o = op("patch", "patch", &what, Some("patch"), name);
            o.description = format!("partially update status of the specified {name}");
            status.insert("patch".into(), operation(kind, o));
        }
        paths.insert(
            format!("{prefix}/{{name}}/status"),
            path_item(kind, status, true),
        );
    }

    if kind.namespaced() {
        let mut all = Map::new();
        let o = Op {
            action: "list",
            id: format!("listCaravanDevV1{name}ForAllNamespaces"),
            description: format!("list or watch objects of kind {name} in every namespace"),
            body: None,
            response: list,
        };
        all.insert("get".into(), operation(kind, o));
        paths.insert(format!("{base}/{plural}"), Value::Object(all));
    }
}

/// The parameters shared by every operation of a path: `namespace`, `name`.
fn path_item(kind: Kind, operations: Map<String, Value>, named: bool) -> Value {
    let mut parameters = Vec::new();
    if named {
        parameters.push(json!({
            "name": "name", "in": "path", "required": true,
            "description": format!("name of the {}", kind.name()),
            "schema": {"type": "string", "uniqueItems": true},
        }));
    }
    if kind.namespaced() {
        parameters.push(json!({
            "name": "namespace", "in": "path", "required": true,
            "description": "object name and auth scope, such as for teams and projects",
            "schema": {"type": "string", "uniqueItems": true},
        }));
    }
    let mut item = operations;
    item.insert("parameters".into(), Value::Array(parameters));
    Value::Object(item)
}

fn query(name: &str, description: &str, ty: &str) -> Value {
    json!({
        "name": name, "in": "query", "description": description,
        "schema": {"type": ty, "uniqueItems": true},
    })
}

fn operation(kind: Kind, op: Op) -> Value {
    let mut parameters = vec![query(
        "pretty",
        "If 'true', then the output is pretty printed.",
        "string",
    )];
    match op.action {
        "list" => {
            parameters.extend([
                query("labelSelector", "A selector to restrict the list of returned objects by their labels.", "string"),
                query("fieldSelector", "A selector to restrict the list of returned objects by their fields.", "string"),
                query("limit", "Maximum number of responses to return for a list call.", "integer"),
                query("continue", "Token from a previous truncated list, to fetch the next page.", "string"),
                query("resourceVersion", "Revision to list from, or to start a watch after.", "string"),
                query("resourceVersionMatch", "How resourceVersion applies to list calls: Exact or NotOlderThan.", "string"),
                query("watch", "Watch for changes to the described resources and return them as a stream of add, update and remove notifications.", "boolean"),
                query("allowWatchBookmarks", "Request BOOKMARK watch events.", "boolean"),
                query("sendInitialEvents", "Start a watch with synthetic ADDED events for the current state.", "boolean"),
                query("timeoutSeconds", "Timeout for the list or watch call.", "integer"),
            ]);
        }
        "post" | "put" | "patch" => {
            parameters.extend([
                query("dryRun", "When present, modifications are not persisted. Valid value: All.", "string"),
                query("fieldManager", "Name of the actor making the change, for field ownership.", "string"),
                query(
                    "fieldValidation",
                    "How the server handles unknown or duplicate fields: Ignore, Warn (the default) or Strict.",
                    "string",
                ),
            ]);
            if op.action == "patch" {
                parameters.push(query(
                    "force",
                    "Force an apply request, taking over conflicting fields.",
                    "boolean",
                ));
            }
        }
        "delete" => {
            parameters.extend([
                query("dryRun", "When present, modifications are not persisted. Valid value: All.", "string"),
                query("gracePeriodSeconds", "Seconds before the object is deleted.", "integer"),
                query("propagationPolicy", "Whether and how garbage collection is performed: Orphan, Background or Foreground.", "string"),
            ]);
        }
        _ => {}
    }

    let content = |schema: Value| {
        json!({
            "application/json": {"schema": schema.clone()},
            "application/yaml": {"schema": schema},
        })
    };
    let mut responses = Map::new();
    responses.insert(
        "200".into(),
        json!({"description": "OK", "content": content(reference(&op.response))}),
    );
    match op.action {
        "post" => {
            responses.insert(
                "201".into(),
                json!({"description": "Created", "content": content(reference(&op.response))}),
            );
            responses.insert(
                "202".into(),
                json!({"description": "Accepted", "content": content(reference(&op.response))}),
            );
        }
        "put" | "patch" => {
            responses.insert(
                "201".into(),
                json!({"description": "Created", "content": content(reference(&op.response))}),
            );
        }
        "delete" => {
            responses.insert(
                "202".into(),
                json!({"description": "Accepted", "content": content(reference(&op.response))}),
            );
        }
        _ => {}
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    for (code, description) in error_responses(op.action) {
        responses.insert(
            code.into(),
            json!({"description": description, "content": {"application/json": {"schema": reference("Status")}}}),
        );
    }

    let mut operation = json!({
        "operationId": op.id,
        "description": op.description,
        "tags": ["caravanDev_v1"],
        "parameters": parameters,
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": gvk(kind),
    });
    if let Some(body) = op.body {
        let body_content = if body == "patch" {
            json!({
                "application/merge-patch+json": {"schema": reference("Patch")},
                "application/apply-patch+yaml": {"schema": reference("Patch")},
            })
        } else {
            json!({"application/json": {"schema": reference(kind.name())}, "application/yaml": {"schema": reference(kind.name())}})
        };
        operation["requestBody"] = json!({"required": true, "content": body_content});
    }
    operation
}

/// The error answers an operation really gives, each a `Status`: malformed input (400), a
/// missing object or namespace (404), no leader (503); a read past the newest revision (504);
/// and for writes a conflict (409), a body or object too large (413), a media type the
/// operation does not take (415) and a schema or semantic violation (422).
fn error_responses(action: &str) -> Vec<(&'static str, &'static str)> {
    let mut codes = vec![
        ("400", "BadRequest: the request is malformed"),
        (
            "404",
            "NotFound: the object, its namespace or the resource does not exist",
        ),
        (
            "503",
            "ServiceUnavailable: no leader, or the write could not be committed",
        ),
    ];
    match action {
        "get" | "list" => codes.push((
            "504",
            "Timeout: the resourceVersion asked for is newer than the server's",
        )),
        _ => codes.extend([
            (
                "409",
                "Conflict or AlreadyExists: a precondition or resourceVersion no longer holds",
            ),
            (
                "413",
                "RequestEntityTooLarge: the body or the resulting object is over its limit",
            ),
            (
                "415",
                "UnsupportedMediaType: the body's media type is not one the operation takes",
            ),
            (
                "422",
                "Invalid: every field that breaks the schema or a semantic check",
            ),
        ]),
    }
    codes
}
