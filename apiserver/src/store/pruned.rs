//! A stored object's JSON read into a [`Value`] with some fields left out, for in-process
//! watchers that drop them anyway (the leader's allocation cache drops placement metrics and
//! task events): skipped subtrees are parsed over, never built.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Reads a [`Value`] leaving out the fields at `paths` (key paths from the top, `*` for any
/// key). `active` holds the paths whose keys so far match the keys above this level.
pub struct Pruned<'p> {
    paths: &'p [&'p [&'p str]],
    active: Vec<usize>,
    depth: usize,
}

impl<'p> Pruned<'p> {
    /// A reader of whole objects leaving out `paths`.
    pub fn new(paths: &'p [&'p [&'p str]]) -> Self {
        Self {
            paths,
            active: (0..paths.len()).collect(),
            depth: 0,
        }
    }

    /// The paths going on below `key`, and whether one of them ends at it.
    fn below(&self, key: &str) -> (Vec<usize>, bool) {
        let mut deeper = Vec::new();
        let mut ends = false;
        for &i in &self.active {
            let path = self.paths[i];
            if path
                .get(self.depth)
                .is_some_and(|part| *part == "*" || *part == key)
            {
                if path.len() == self.depth + 1 {
                    ends = true;
                } else {
                    deeper.push(i);
                }
            }
        }
        (deeper, ends)
    }
}

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Paths go through objects only: array elements are read whole.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let (deeper, ends) = self.below(&key);
            if ends {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = if deeper.is_empty() {
                map.next_value::<Value>()?
            } else {
                map.next_value_seed(Pruned {
                    paths: self.paths,
                    active: deeper,
                    depth: self.depth + 1,
                })?
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// `json` as a [`Value`] without the fields at `paths`.
pub fn pruned_value(json: &[u8], paths: &[&[&str]]) -> serde_json::Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = Pruned::new(paths).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pruned_values_equal_the_whole_value_with_the_fields_removed() {
        let whole = json!({
            "metadata": {"name": "a", "labels": {"metrics": "kept"}},
            "spec": {"n": 1, "f": 1.5, "neg": -2, "on": true, "none": null, "list": [{"metrics": 1}]},
            "status": {
                "metrics": {"scores": [{"nodeName": "n1"}]},
                "taskStates": {
                    "web": {"state": "running", "events": [{"type": "Started"}]},
                    "log": {"events": []}
                },
                "clientStatus": "running"
            }
        });
        let json = serde_json::to_vec(&whole).unwrap();
        let paths: &[&[&str]] = &[
            &["status", "metrics"],
            &["status", "taskStates", "*", "events"],
        ];
        let mut expected = whole.clone();
        let status = expected["status"].as_object_mut().unwrap();
        status.remove("metrics");
        for task in status["taskStates"].as_object_mut().unwrap().values_mut() {
            task.as_object_mut().unwrap().remove("events");
        }
        assert_eq!(pruned_value(&json, paths).unwrap(), expected);
        assert_eq!(pruned_value(&json, &[]).unwrap(), whole);
        assert!(pruned_value(b"{\"a\": 1} x", paths).is_err());
    }
}
