//! `${…}` in a task's `env` values and driver `config` (Nomad's variable interpolation). Pure.
//!
//! A reference is `${NAME}`, NAME one or more of `A-Z a-z 0-9 _ . -`, and resolves, in this
//! order, to:
//!
//! - `${node.unique.id}`, `${node.unique.name}`, `${node.datacenter}`, `${node.region}`,
//!   `${node.class}` (empty when the node has none), `${node.pool}`;
//! - `${attr.<key>}`: the node's status attribute `<key>` (`${attr.kernel.name}`);
//! - `${meta.<key>}`: the node's `spec.meta` entry `<key>`;
//! - `${<VAR>}`: a variable of the task's environment (`${NOMAD_PORT_http}`,
//!   `${CARAVAN_ALLOC_INDEX}`, …; see `env.rs`).
//!
//! What resolves to nothing is left as written, as Nomad does, and so is anything that is not a
//! reference (`$HOME`, `${}`, `${a b}`). Substituted text is never scanned again, so a value
//! holding `${…}` stays as it is. The work is linear in the text: each byte is looked at once.
//! The text substitution adds is bounded by a [`Budget`] shared by everything one task's spec
//! interpolates; a reference whose value no longer fits is left as written.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;

/// Bytes that substitutions may add to one task's environment and config together.
pub const MAX_EXPANSION_BYTES: usize = 4 * 1024 * 1024;

/// What `${node.*}`, `${attr.*}` and `${meta.*}` read: the node as its agent registers it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeVars {
    /// `${node.unique.id}`: the node id (`unique.node.id`).
    pub id: String,
    /// `${node.unique.name}`: the node name.
    pub name: String,
    /// `${node.datacenter}`, and `NOMAD_DC` in tasks.
    pub datacenter: String,
    /// `${node.region}`: the agent's region, when known.
    pub region: Option<String>,
    /// `${node.class}`.
    pub class: Option<String>,
    /// `${node.pool}`.
    pub pool: String,
    /// `${attr.<key>}`: the node's status attributes.
    pub attributes: BTreeMap<String, String>,
    /// `${meta.<key>}`: the node's meta.
    pub meta: BTreeMap<String, String>,
}

impl NodeVars {
    /// The value of a node reference (`node.*`, `attr.*`, `meta.*`); `None` for anything else
    /// and for facts not known (an empty id, name, datacenter or pool).
    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some(key) = name.strip_prefix("attr.") {
            return self.attributes.get(key).map(String::as_str);
        }
        if let Some(key) = name.strip_prefix("meta.") {
            return self.meta.get(key).map(String::as_str);
        }
        fn known(v: &str) -> Option<&str> {
            Some(v).filter(|v| !v.is_empty())
        }
        match name {
            "node.unique.id" => known(&self.id),
            "node.unique.name" => known(&self.name),
            "node.datacenter" => known(&self.datacenter),
            "node.region" => self.region.as_deref(),
            // Nomad's node.class is the empty string on a node without a class.
            "node.class" if !self.id.is_empty() => Some(self.class.as_deref().unwrap_or("")),
            "node.pool" => known(&self.pool),
            _ => None,
        }
    }
}

/// What references resolve against: the node, then an environment.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub node: &'a NodeVars,
    pub env: &'a BTreeMap<String, String>,
}

impl<'a> Scope<'a> {
    /// The value of `${name}`, if any.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.node
            .get(name)
            .or_else(|| self.env.get(name).map(String::as_str))
    }
}

/// How many bytes substitutions may still add; see [`MAX_EXPANSION_BYTES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    left: usize,
    exhausted: bool,
}

impl Budget {
    pub fn new(bytes: usize) -> Self {
        Self {
            left: bytes,
            exhausted: false,
        }
    }

    /// Whether a reference was left as written because its value did not fit.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    fn take(&mut self, bytes: usize) -> bool {
        if bytes > self.left {
            self.exhausted = true;
            return false;
        }
        self.left -= bytes;
        true
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(MAX_EXPANSION_BYTES)
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// `text` with every reference that resolves in `scope` replaced; borrowed when none does.
pub fn interpolate<'t>(text: &'t str, scope: &Scope<'_>, budget: &mut Budget) -> Cow<'t, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // `text[..copied]` is in `out` already (or needs no copy while `out` is `None`).
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = text[at..].find("${") {
        let start = at + found;
        let name_start = start + 2;
        let mut end = name_start;
        while end < bytes.len() && is_name_byte(bytes[end]) {
            end += 1;
        }
        if end == name_start || bytes.get(end) != Some(&b'}') {
            // Not a reference; the bytes scanned hold no `$`, so go on after them.
            at = end;
            continue;
        }
        at = end + 1;
        let Some(value) = scope.get(&text[name_start..end]) else {
            continue;
        };
        if !budget.take(value.len()) {
            continue;
        }
        let o = out.get_or_insert_with(|| String::with_capacity(text.len() + value.len()));
        o.push_str(&text[copied..start]);
        o.push_str(value);
        copied = at;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Interpolates every string in `value`, through arrays and objects at any depth (object keys
/// are left as they are).
pub fn interpolate_json(value: &mut Value, scope: &Scope<'_>, budget: &mut Budget) {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) => {
                if let Cow::Owned(new) = interpolate(s, scope, budget) {
                    *s = new;
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(map) => stack.extend(map.values_mut()),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node() -> NodeVars {
        NodeVars {
            id: "9f1c".into(),
            name: "n1".into(),
            datacenter: "dc2".into(),
            region: Some("eu".into()),
            class: None,
            pool: "gpu".into(),
            attributes: BTreeMap::from([
                ("kernel.name".to_string(), "linux".to_string()),
                (
                    "unique.network.ip-address".to_string(),
                    "10.0.0.5".to_string(),
                ),
            ]),
            meta: BTreeMap::from([("rack".to_string(), "r1".to_string())]),
        }
    }

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("NOMAD_PORT_http".to_string(), "20001".to_string()),
            ("CARAVAN_ALLOC_INDEX".to_string(), "3".to_string()),
            ("NOMAD_META_tier".to_string(), "web".to_string()),
            ("HOLDS_A_REF".to_string(), "${NOMAD_PORT_http}".to_string()),
        ])
    }

    fn run(text: &str) -> String {
        let (node, env) = (node(), env());
        let scope = Scope {
            node: &node,
            env: &env,
        };
        interpolate(text, &scope, &mut Budget::default()).into_owned()
    }

    #[test]
    fn every_source_resolves() {
        assert_eq!(
            run("${node.unique.id} ${node.unique.name} ${node.datacenter} ${node.region}"),
            "9f1c n1 dc2 eu"
        );
        assert_eq!(run("[${node.class}] ${node.pool}"), "[] gpu");
        assert_eq!(
            run("${attr.kernel.name}@${attr.unique.network.ip-address}"),
            "linux@10.0.0.5"
        );
        assert_eq!(run("rack=${meta.rack}"), "rack=r1");
        assert_eq!(
            run("--port=${NOMAD_PORT_http} -i ${CARAVAN_ALLOC_INDEX} ${NOMAD_META_tier}"),
            "--port=20001 -i 3 web"
        );
    }

    #[test]
    fn unknown_references_and_non_references_are_left() {
        for text in [
            "${attr.nope}",
            "${meta.nope}",
            "${node.nope}",
            "${NOPE}",
            "$HOME",
            "${}",
            "${a b}",
            "${NOMAD_PORT_http",
            "$${",
            "${${",
            "}${",
            "plain",
            "",
        ] {
            assert_eq!(run(text), text);
        }
        assert_eq!(run("${${NOMAD_PORT_http}}"), "${20001}");
        assert_eq!(run("$${NOMAD_PORT_http}"), "$20001");
        assert_eq!(run("${NOPE}${NOMAD_PORT_http}"), "${NOPE}20001");
        assert_eq!(run("é${NOMAD_PORT_http}ü"), "é20001ü");
        // A region not known is left as written; so are facts of a node not known at all.
        let unknown = NodeVars::default();
        let env = BTreeMap::new();
        let scope = Scope {
            node: &unknown,
            env: &env,
        };
        let text = "${node.region} ${node.unique.id} ${node.class} ${node.datacenter}";
        assert_eq!(interpolate(text, &scope, &mut Budget::default()), text);
    }

    #[test]
    fn substituted_text_is_not_scanned_again() {
        assert_eq!(run("${HOLDS_A_REF}"), "${NOMAD_PORT_http}");
    }

    #[test]
    fn nothing_to_do_borrows() {
        let (node, env) = (node(), env());
        let scope = Scope {
            node: &node,
            env: &env,
        };
        let mut budget = Budget::default();
        assert!(matches!(
            interpolate("no ${refs} here", &scope, &mut budget),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn nested_config_strings_resolve() {
        let (node, env) = (node(), env());
        let scope = Scope {
            node: &node,
            env: &env,
        };
        let mut config = json!({
            "command": "${attr.kernel.name}-server",
            "args": ["--port", "${NOMAD_PORT_http}", ["${meta.rack}", 7, null, true]],
            "image": "registry/${NOMAD_META_tier}:latest",
            "nested": {"deep": {"${NOMAD_PORT_http}": "${node.pool}"}},
        });
        interpolate_json(&mut config, &scope, &mut Budget::default());
        assert_eq!(
            config,
            json!({
                "command": "linux-server",
                "args": ["--port", "20001", ["r1", 7, null, true]],
                "image": "registry/web:latest",
                "nested": {"deep": {"${NOMAD_PORT_http}": "gpu"}},
            })
        );
    }

    #[test]
    fn expansion_is_bounded() {
        let node = NodeVars::default();
        let env = BTreeMap::from([("BIG".to_string(), "x".repeat(1000))]);
        let scope = Scope {
            node: &node,
            env: &env,
        };
        let mut budget = Budget::new(2500);
        let out = interpolate("${BIG}${BIG}${BIG}", &scope, &mut budget);
        assert_eq!(
            out,
            format!("{}{}${{BIG}}", "x".repeat(1000), "x".repeat(1000))
        );
        assert!(budget.exhausted());
        // Shared: the next string gets what is left.
        assert_eq!(interpolate("${BIG}", &scope, &mut budget), "${BIG}");
    }

    #[test]
    fn hostile_input_stays_linear() {
        let (node, env) = (node(), env());
        let scope = Scope {
            node: &node,
            env: &env,
        };
        // Many openings that never close, long names that never close, and many references:
        // each takes one pass (a quadratic scan would take minutes here).
        let unclosed = "${".repeat(2_000_000);
        let started = std::time::Instant::now();
        assert_eq!(
            interpolate(&unclosed, &scope, &mut Budget::default()),
            unclosed
        );
        let long_name = format!("${{{}", "a".repeat(4_000_000)).repeat(2);
        assert_eq!(
            interpolate(&long_name, &scope, &mut Budget::default()),
            long_name
        );
        let many = "${NOMAD_PORT_http}".repeat(200_000);
        let out = interpolate(&many, &scope, &mut Budget::default());
        assert_eq!(out.len(), 5 * 200_000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
}
