//! Loading objects from `-f` arguments: files, directories and standard input, as YAML
//! (multi-document) or JSON, with `kind: List` expanded.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;

/// One object and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The file it was read from, or `-` for standard input.
    pub source: String,
    pub object: Value,
}

/// Reads every object named by `paths`, in order; a directory contributes its `.yaml`,
/// `.yml` and `.json` files sorted by name; `-` reads `stdin`.
pub fn load(paths: &[PathBuf], stdin: &mut dyn Read) -> anyhow::Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .context("failed to read standard input")?;
            manifests.extend(parse(&text, "-")?);
        } else if path.is_dir() {
            for file in manifest_files(path)? {
                manifests.extend(load_file(&file)?);
            }
        } else {
            manifests.extend(load_file(path)?);
        }
    }
    Ok(manifests)
}

/// The manifest files directly inside `dir`, sorted.
fn manifest_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let is_manifest = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if is_manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn load_file(path: &Path) -> anyhow::Result<Vec<Manifest>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "the path \"{}\" does not exist or cannot be read",
            path.display()
        )
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses one file's text: JSON when it starts with `{` or `[`, YAML documents otherwise.
pub fn parse(text: &str, source: &str) -> anyhow::Result<Vec<Manifest>> {
    let mut objects = Vec::new();
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let value: Value = serde_json::from_str(text)
            .with_context(|| format!("error parsing {source}: invalid JSON"))?;
        objects.push(value);
    } else {
        for (i, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(document)
                .with_context(|| format!("error parsing {source}: YAML document {}", i + 1))?;
            objects.push(value);
        }
    }
    let mut manifests = Vec::new();
    for object in objects {
        expand(object, source, &mut manifests)?;
    }
    Ok(manifests)
}

/// Drops empty documents, flattens lists, and checks each object names its kind.
fn expand(object: Value, source: &str, out: &mut Vec<Manifest>) -> anyhow::Result<()> {
    match object {
        Value::Null => Ok(()),
        Value::Array(items) => items.into_iter().try_for_each(|o| expand(o, source, out)),
        Value::Object(ref map) => {
            let kind = map.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind == "List" || (kind.ends_with("List") && map.contains_key("items")) {
                let items = map.get("items").cloned().unwrap_or(Value::Null);
                return expand(items, source, out);
            }
            if kind.is_empty() {
                bail!("error validating {source}: object has no \"kind\" set");
            }
            out.push(Manifest {
                source: source.to_owned(),
                object,
            });
            Ok(())
        }
        other => bail!("error parsing {source}: expected an object, found {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(manifests: &[Manifest]) -> Vec<&str> {
        manifests
            .iter()
            .map(|m| m.object["metadata"]["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn yaml_documents_are_split_and_empty_ones_skipped() {
        let text = "---\nkind: Namespace\nmetadata: {name: prod}\n---\n# only a comment\n---\nkind: Job\nmetadata:\n  name: web\n---\n";
        let manifests = parse(text, "x.yaml").unwrap();
        assert_eq!(names(&manifests), ["prod", "web"]);
        assert_eq!(manifests[0].source, "x.yaml");
    }

    #[test]
    fn json_objects_and_lists_are_accepted() {
        let text = r#"{"kind":"List","items":[{"kind":"Job","metadata":{"name":"a"}},{"kind":"Job","metadata":{"name":"b"}}]}"#;
        assert_eq!(names(&parse(text, "l.json").unwrap()), ["a", "b"]);
    }

    #[test]
    fn objects_without_kind_are_rejected() {
        let err = parse("metadata: {name: x}\n", "bad.yaml").unwrap_err();
        assert!(err.to_string().contains("no \"kind\""), "{err}");
    }

    #[test]
    fn a_directory_contributes_its_manifests_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yml"), "kind: Job\nmetadata: {name: b}\n").unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "kind: Job\nmetadata: {name: a}\n---\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("c.json"),
            r#"{"kind":"Job","metadata":{"name":"c"}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
        let mut stdin = std::io::empty();
        let manifests = load(&[dir.path().to_path_buf()], &mut stdin).unwrap();
        assert_eq!(names(&manifests), ["a", "b", "c"]);
    }

    #[test]
    fn dash_reads_standard_input() {
        let mut stdin = "kind: Job\nmetadata: {name: s}\n".as_bytes();
        let manifests = load(&[PathBuf::from("-")], &mut stdin).unwrap();
        assert_eq!(names(&manifests), ["s"]);
        assert_eq!(manifests[0].source, "-");
    }
}
