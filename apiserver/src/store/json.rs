//! An object's JSON on its way into the store, and what the store reads out of it.
//!
//! A write is serialized once: the API server turns the admitted object into [`ObjectJson`],
//! the Raft log embeds those bytes as they are, and applying the entry splices
//! `metadata.resourceVersion` into them and reads the indexed fields through a borrowed view
//! (`Indexed`), without building a `serde_json::Value`.
//!
//! ```text
//! admitted object ──serialize once──▶ ObjectJson ──▶ log entry (verbatim)
//!                                          │ apply at index N
//!                                          ▼
//!             {"metadata":{"resourceVersion":"N",…},…}  +  key, uid, labels, fields
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use caravan_schemas::Kind;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// A whole object as JSON, without `metadata.resourceVersion` (the store stamps it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectJson(Box<RawValue>);

impl ObjectJson {
    /// Serializes `value`, leaving out the `metadata.resourceVersion` it may carry.
    pub fn from_value(mut value: Value) -> ObjectJson {
        if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("resourceVersion");
        }
        ObjectJson::serialize(&value).expect("a JSON value always serializes")
    }

    /// Serializes a typed object. A `metadata.resourceVersion` in it is replaced when stored.
    pub fn serialize<T: Serialize + ?Sized>(object: &T) -> Result<ObjectJson, serde_json::Error> {
        serde_json::value::to_raw_value(object).map(ObjectJson)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl From<Box<RawValue>> for ObjectJson {
    fn from(json: Box<RawValue>) -> ObjectJson {
        ObjectJson(json)
    }
}

impl PartialEq for ObjectJson {
    fn eq(&self, other: &ObjectJson) -> bool {
        self.get() == other.get()
    }
}

/// What the store indexes of an object, read from its JSON.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Indexed<'a> {
    pub name: Option<Cow<'a, str>>,
    pub namespace: Option<Cow<'a, str>>,
    pub uid: Option<Cow<'a, str>>,
    /// Labels with string values (others are skipped, as the value path does).
    pub labels: BTreeMap<String, String>,
    /// String fields of `spec` and of `status`.
    pub spec: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub status: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// Where the `{` of `metadata` is in the JSON.
    pub metadata_at: usize,
    /// Whether `metadata` is empty (`{}`).
    pub metadata_empty: bool,
}

impl<'a> Indexed<'a> {
    /// Reads `json`; `None` when the fast path cannot stamp it: not an object, `metadata`
    /// missing or not an object, a `resourceVersion` already there, or a duplicate field.
    pub fn read(json: &'a str) -> Option<Indexed<'a>> {
        #[derive(Deserialize)]
        struct Top<'a> {
            #[serde(borrow)]
            metadata: &'a RawValue,
            #[serde(borrow, default)]
            spec: Strings<'a>,
            #[serde(borrow, default)]
            status: Strings<'a>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Meta<'a> {
            #[serde(borrow, default)]
            name: MaybeStr<'a>,
            #[serde(borrow, default)]
            namespace: MaybeStr<'a>,
            #[serde(borrow, default)]
            uid: MaybeStr<'a>,
            #[serde(borrow, default)]
            labels: Strings<'a>,
            #[serde(default)]
            resource_version: Present,
        }

        let top: Top<'a> = serde_json::from_str(json).ok()?;
        let raw = top.metadata.get();
        let at = (raw.as_ptr() as usize).checked_sub(json.as_ptr() as usize)?;
        if json.as_bytes().get(at) != Some(&b'{') {
            return None;
        }
        let meta: Meta<'a> = serde_json::from_str(raw).ok()?;
        if meta.resource_version.0 {
            return None;
        }
        let metadata_empty = raw[1..].trim_start().starts_with('}');
        Some(Indexed {
            name: meta.name.0,
            namespace: meta.namespace.0,
            uid: meta.uid.0,
            labels: meta
                .labels
                .0
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            spec: top.spec.0,
            status: top.status.0,
            metadata_at: at,
            metadata_empty,
        })
    }

    /// The string at a selectable field (`spec.x` or `status.x`).
    pub fn field(&self, path: &str) -> Option<&str> {
        let (top, name) = path.split_once('.')?;
        let fields = match top {
            "spec" => &self.spec,
            "status" => &self.status,
            _ => return None,
        };
        // A later duplicate wins, as when parsing into a map.
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// `json` with `"resourceVersion":"<rv>"` first in its `metadata`.
    pub fn stamp(&self, json: &str, resource_version: u64) -> Vec<u8> {
        let rv = resource_version.to_string();
        let mut out = Vec::with_capacity(json.len() + rv.len() + 22);
        let (head, tail) = json.split_at(self.metadata_at + 1);
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(b"\"resourceVersion\":\"");
        out.extend_from_slice(rv.as_bytes());
        out.push(b'"');
        if !self.metadata_empty {
            out.push(b',');
        }
        out.extend_from_slice(tail.as_bytes());
        out
    }
}

/// Whether selectable fields of `kind` can be read by [`Indexed`]: each is `spec.x` or
/// `status.x`.
pub(crate) fn readable(kind: Kind) -> bool {
    kind.selectable_fields().iter().all(|path| {
        matches!(path.split_once('.'), Some(("spec" | "status", name)) if !name.contains('.'))
    })
}

/// Whether a field is there, whatever its value (`null` included, unlike `Option`).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Present, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Present(true))
    }
}

/// A string, or `None` for any other value.
#[derive(Default)]
struct MaybeStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for MaybeStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MaybeStr<'a>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<Cow<'de, str>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Some(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(None)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(None)
            }
        }
        deserializer.deserialize_any(V).map(MaybeStr)
    }
}

/// The string-valued entries of an object, in order; empty for any other value.
#[derive(Default)]
struct Strings<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Strings<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strings<'a>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(Cow<'de, str>, Cow<'de, str>)>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                // Keys through `MaybeStr`: serde's own `Cow<str>` never borrows.
                while let Some(MaybeStr(key)) = map.next_key()? {
                    let MaybeStr(value) = map.next_value()?;
                    if let (Some(key), Some(value)) = (key, value) {
                        out.push((key, value));
                    }
                }
                Ok(out)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Vec::new())
            }
            fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Vec::new())
            }
        }
        deserializer.deserialize_any(V).map(Strings)
    }
}

#[cfg(test)]
mod tests;
