//! Decoding into a `serde_json::Value` that refuses a key appearing twice in one object, for
//! `fieldValidation=Strict` (serde_json's own `Value` keeps the last one silently). The same
//! work as decoding a `Value`: the insert that would replace a value finds the duplicate.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Decodes a `Value`, refusing duplicate keys; names the format in the error, as Kubernetes
/// does (`json: duplicate field "name"`).
#[derive(Clone, Copy, Debug)]
pub struct UniqueKeys {
    format: &'static str,
}

impl UniqueKeys {
    pub const JSON: UniqueKeys = UniqueKeys { format: "json" };
    pub const YAML: UniqueKeys = UniqueKeys { format: "yaml" };
}

const DUPLICATE: &str = ": duplicate field ";

/// The `json: duplicate field "x"` part of a decoding error, when it is one (the decoders add
/// the path and the position around it).
pub fn duplicate(error: &str) -> Option<&str> {
    let at = ["json", "yaml"]
        .into_iter()
        .find_map(|format| error.find(&format!("{format}{DUPLICATE}")))?;
    let rest = &error[at..];
    Some(rest.find(" at line ").map_or(rest, |end| &rest[..end]))
}

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            match object.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(slot) => {
                    let key = Value::String(slot.key().clone());
                    return Err(de::Error::custom(format_args!(
                        "{}{DUPLICATE}{key}",
                        self.format
                    )));
                }
            }
        }
        Ok(Value::Object(object))
    }
}
