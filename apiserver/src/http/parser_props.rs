//! Properties of the parsers that read what clients send: whatever the input, they answer a
//! value or an error, never a panic.

use caravan_schemas::Kind;
use proptest::prelude::*;

use super::query::Query;
use crate::api::selector::{FieldSelector, LabelSelector, Selectors};

/// Strings made of the characters selectors and queries are built from, so that cases reach
/// deep into the grammars, plus arbitrary text.
fn selector_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.=!,()/ _-]{0,40}",
        "[a-z]{1,5}(( in | notin )\\([a-z,]{0,10}\\))?(,!?[a-z]{1,4}(==?|!=)[a-z]{0,3})*",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn selectors_never_panic(text in selector_text()) {
        let _ = LabelSelector::parse(&text);
        for kind in Kind::ALL {
            let _ = FieldSelector::parse(&text, kind);
        }
        let _ = Selectors::parse(Kind::Allocation, Some(&text), Some(&text));
    }

    #[test]
    fn queries_never_panic(text in "[a-zA-Z0-9=&%+.,_-]{0,60}|.{0,60}") {
        let _ = Query::parse(Some(&text));
    }

    #[test]
    fn merge_patches_never_panic(base in json_value(3), patch in json_value(3)) {
        let mut doc = base;
        json_patch::merge(&mut doc, &patch);
    }
}

/// Arbitrary JSON values up to `depth` levels deep.
fn json_value(depth: u32) -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(depth, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
