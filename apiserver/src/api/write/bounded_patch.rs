//! Applying a JSON patch (RFC 6902) without letting it grow the object past
//! [`MAX_OBJECT_BYTES`]: a handful of `copy` operations doubling `/spec` into itself would
//! otherwise build hundreds of megabytes from a kilobyte of patch.
//!
//! The operations are applied one at a time, keeping an upper bound of the document's
//! serialized size: its size at the start plus, for each operation, what it may add (the
//! serialized value an `add`, `replace` or `copy` puts in, and the key it may create). A value
//! is measured by serializing it into a counter that stops once the bound would pass the
//! limit, so the work is bounded by the limit, not by what the patch would build.

use std::io;

use caravan_schemas::limits::MAX_OBJECT_BYTES;
use json_patch::PatchOperation;
use json_patch::jsonptr::Pointer;
use serde::Serialize;
use serde_json::Value;

/// Why a patch was not applied.
#[derive(Debug)]
pub enum PatchFailure {
    /// The patched object may be larger than [`MAX_OBJECT_BYTES`] (at operation `op`).
    TooLarge { op: usize },
    /// An operation could not be applied (a `test` that failed, a path that is not there);
    /// the message names it by its index.
    Failed { message: String },
}

/// Applies `ops` to `doc`, whose JSON is `size` bytes. On an error `doc` is left half
/// patched: the caller drops it.
pub fn apply(doc: &mut Value, size: usize, ops: &[PatchOperation]) -> Result<(), PatchFailure> {
    let mut bound = size;
    for (op, operation) in ops.iter().enumerate() {
        let room = MAX_OBJECT_BYTES.saturating_sub(bound);
        let growth =
            match operation {
                PatchOperation::Add(add) => measure(&add.value, room)
                    .and_then(|value| Some(value + key_size(&add.path, room)?)),
                PatchOperation::Replace(replace) => measure(&replace.value, room),
                PatchOperation::Copy(copy) => match doc.pointer(copy.from.as_str()) {
                    Some(value) => measure(value, room)
                        .and_then(|value| Some(value + key_size(&copy.path, room)?)),
                    // Fails below.
                    None => Some(0),
                },
                PatchOperation::Move(mv) => key_size(&mv.path, room),
                PatchOperation::Remove(_) | PatchOperation::Test(_) => Some(0),
            };
        bound = match growth {
            Some(growth) if growth <= room => bound + growth,
            _ => return Err(PatchFailure::TooLarge { op }),
        };
        json_patch::patch_unsafe(doc, std::slice::from_ref(operation)).map_err(|e| {
            PatchFailure::Failed {
                message: format!("operation '/{op}' failed at path '{}': {}", e.path, e.kind),
            }
        })?;
    }
    Ok(())
}

/// What a new member named by the last token of `path` may add: `,"key":`.
fn key_size(path: &Pointer, room: usize) -> Option<usize> {
    match path.last() {
        Some(token) => measure(&*token.decoded(), room).map(|key| key + 2),
        None => Some(0),
    }
}

/// The serialized size of `value`, `None` when it is more than `room` bytes (and a comma).
fn measure<T: Serialize + ?Sized>(value: &T, room: usize) -> Option<usize> {
    let mut counter = Counter {
        written: 0,
        room: room.saturating_sub(1),
    };
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.written + 1)
}

/// Counts bytes, failing once more than `room` were written.
struct Counter {
    written: usize,
    room: usize,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        if self.written > self.room {
            return Err(io::Error::other("over the object size limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ops(v: Value) -> Vec<PatchOperation> {
        serde_json::from_value(v).expect("a JSON patch")
    }

    fn size(v: &Value) -> usize {
        serde_json::to_vec(v).unwrap().len()
    }

    #[test]
    fn copies_that_double_the_document_are_refused_before_they_grow_it() {
        let mut doc = json!({"spec": {"groups": [{"tasks": [{"config": {
            "blob": "x".repeat(10_000)
        }}]}]}});
        let copies: Vec<Value> = (0..18)
            .map(|i| json!({"op": "copy", "from": "/spec", "path": format!("/spec/groups/0/tasks/0/config/x{i}")}))
            .collect();
        let start = size(&doc);
        let err = apply(&mut doc, start, &ops(Value::Array(copies))).unwrap_err();
        // 10 kB doubled 8 times is 2.5 MB; the 9th copy would pass 3 MiB.
        assert!(matches!(err, PatchFailure::TooLarge { op: 8 }), "{err:?}");
        assert!(size(&doc) <= MAX_OBJECT_BYTES);
    }

    #[test]
    fn the_bound_is_never_below_the_real_size() {
        let mut doc = json!({"a": {"b": [1, 2, {"c": "d"}]}, "e": "f"});
        let patch = ops(json!([
            {"op": "add", "path": "/a/new\"key\u{1}", "value": {"x": [1, 2, 3]}},
            {"op": "copy", "from": "/a", "path": "/a/b/-"},
            {"op": "copy", "from": "/a", "path": "/g"},
            {"op": "move", "from": "/e", "path": "/a/moved"},
            {"op": "replace", "path": "/g/b/0", "value": "a longer value than 1"},
            {"op": "add", "path": "", "value": {"whole": "document"}},
            {"op": "add", "path": "/w", "value": ["é", "\n"]},
            {"op": "remove", "path": "/whole"},
            {"op": "test", "path": "/w/0", "value": "é"},
        ]));
        let mut bound = size(&doc);
        for (i, op) in patch.iter().enumerate() {
            let before = doc.clone();
            apply(&mut doc, bound, std::slice::from_ref(op)).unwrap();
            let growth = match op {
                PatchOperation::Add(a) => {
                    measure(&a.value, usize::MAX).unwrap() + key_size(&a.path, usize::MAX).unwrap()
                }
                PatchOperation::Replace(r) => measure(&r.value, usize::MAX).unwrap(),
                PatchOperation::Copy(c) => {
                    measure(before.pointer(c.from.as_str()).unwrap(), usize::MAX).unwrap()
                        + key_size(&c.path, usize::MAX).unwrap()
                }
                PatchOperation::Move(m) => key_size(&m.path, usize::MAX).unwrap(),
                _ => 0,
            };
            bound += growth;
            assert!(size(&doc) <= bound, "op {i}: {} > {bound}", size(&doc));
        }
    }

    #[test]
    fn a_failing_operation_is_named_by_its_index() {
        let mut doc = json!({"a": 1});
        let patch = ops(json!([
            {"op": "add", "path": "/b", "value": 2},
            {"op": "test", "path": "/a", "value": 2},
        ]));
        let start = size(&doc);
        match apply(&mut doc, start, &patch) {
            Err(PatchFailure::Failed { message }) => {
                assert!(
                    message.contains("operation '/1' failed at path '/a'"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
