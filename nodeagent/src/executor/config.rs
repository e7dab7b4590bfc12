//! The task configuration (`config:` of a task) of the `raw_exec`, `exec` and `oci` drivers,
//! checked before anything starts. Pure.
//!
//! | key       | raw_exec | exec | oci | meaning                                               |
//! |-----------|----------|------|-----|-------------------------------------------------------|
//! | `command` | required | required | optional | program; for oci it replaces the image's entrypoint + cmd |
//! | `args`    | ✓ | ✓ | ✓ | list of strings; for oci without `command` they replace the image's cmd |
//! | `env`     | ✓ | ✓ | ✓ | object of strings, added to the task's environment             |
//! | `workDir` | ✓ | ✓ | ✓ | working directory (raw_exec: relative to the task directory)   |
//! | `user`    | ✓ | ✓ | ✓ | `uid[:gid]` or a user name; overrides the task's `user`         |
//! | `image`   |   |   | one of | name of an image of the local image store                   |
//! | `rootfs`  |   |   | one of | absolute path of an unpacked root filesystem                |
//! | `capAdd`  |   | ✓ | ✓ | capabilities added to Docker's default set (within the client's `allowCaps`) |
//! | `capDrop` |   | ✓ | ✓ | capabilities taken from it (`all`: every one)                  |

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::{Map, Value};

/// The drivers that run tasks through an executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriverKind {
    RawExec,
    Exec,
    Oci,
}

impl DriverKind {
    pub const ALL: [DriverKind; 3] = [DriverKind::RawExec, DriverKind::Exec, DriverKind::Oci];

    pub fn name(self) -> &'static str {
        match self {
            DriverKind::RawExec => "raw_exec",
            DriverKind::Exec => "exec",
            DriverKind::Oci => "oci",
        }
    }

    pub fn from_name(name: &str) -> Option<DriverKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// `exec` and `oci` run in a container (namespaces and cgroups).
    pub fn contained(self) -> bool {
        !matches!(self, DriverKind::RawExec)
    }

    fn known_keys(self) -> &'static [&'static str] {
        match self {
            DriverKind::RawExec => &["command", "args", "env", "workDir", "user"],
            DriverKind::Exec => &[
                "command", "args", "env", "workDir", "user", "capAdd", "capDrop",
            ],
            DriverKind::Oci => &[
                "command", "args", "env", "workDir", "user", "image", "rootfs", "capAdd", "capDrop",
            ],
        }
    }
}

impl fmt::Display for DriverKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A checked task configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskConfig {
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub work_dir: Option<String>,
    pub user: Option<String>,
    pub image: Option<String>,
    pub rootfs: Option<PathBuf>,
    /// Capabilities added to, and dropped from, the default set (container drivers).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
}

impl TaskConfig {
    /// Checks `config` for `kind`. The error says which key is wrong.
    pub fn parse(kind: DriverKind, config: &Map<String, Value>) -> Result<TaskConfig, String> {
        if let Some(key) = config
            .keys()
            .find(|k| !kind.known_keys().contains(&k.as_str()))
        {
            return Err(format!(
                "unknown key {key:?} for driver {kind} (known: {})",
                kind.known_keys().join(", ")
            ));
        }
        let parsed = TaskConfig {
            command: optional_string(config, "command")?,
            args: match config.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(format!("\"args\" must be strings, found {other}")),
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => return Err(format!("\"args\" must be a list, found {other}")),
            },
            env: match config.get("env") {
                None | Some(Value::Null) => BTreeMap::new(),
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        other => Err(format!("\"env\" values must be strings, {k} is {other}")),
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => return Err(format!("\"env\" must be an object, found {other}")),
            },
            work_dir: optional_string(config, "workDir")?,
            user: optional_string(config, "user")?,
            image: optional_string(config, "image")?,
            rootfs: optional_string(config, "rootfs")?.map(PathBuf::from),
            cap_add: strings(config, "capAdd")?,
            cap_drop: strings(config, "capDrop")?,
        };
        for name in parsed.cap_add.iter().chain(&parsed.cap_drop) {
            if !name.eq_ignore_ascii_case("all") {
                super::capabilities::parse(name)?;
            }
        }
        match kind {
            DriverKind::RawExec | DriverKind::Exec if parsed.command.is_none() => {
                Err("\"command\" is required".into())
            }
            DriverKind::Oci => match (&parsed.image, &parsed.rootfs) {
                (None, None) => Err("one of \"image\" and \"rootfs\" is required".into()),
                (Some(_), Some(_)) => Err("\"image\" and \"rootfs\" exclude each other".into()),
                (None, Some(rootfs)) if !rootfs.is_absolute() => Err(format!(
                    "\"rootfs\" must be an absolute path, not {rootfs:?}"
                )),
                _ => Ok(parsed),
            },
            _ => Ok(parsed),
        }
    }
}

/// A list of strings under `key`, empty when absent.
fn strings(config: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("\"{key}\" must be strings, found {other}")),
            })
            .collect(),
        Some(other) => Err(format!("\"{key}\" must be a list, found {other}")),
    }
}

fn optional_string(config: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(format!("\"{key}\" must not be empty")),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("\"{key}\" must be a string, found {other}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(kind: DriverKind, config: Value) -> Result<TaskConfig, String> {
        TaskConfig::parse(kind, config.as_object().unwrap())
    }

    #[test]
    fn raw_exec_config_reads_command_args_and_env() {
        let config = parse(
            DriverKind::RawExec,
            json!({"command": "/bin/sh", "args": ["-c", "exit 3"], "env": {"A": "1"}}),
        )
        .unwrap();
        assert_eq!(config.command.as_deref(), Some("/bin/sh"));
        assert_eq!(config.args, ["-c", "exit 3"]);
        assert_eq!(config.env["A"], "1");
    }

    #[test]
    fn executor_config_rejects_missing_command() {
        for kind in [DriverKind::RawExec, DriverKind::Exec] {
            let err = parse(kind, json!({"args": ["x"]})).unwrap_err();
            assert!(err.contains("\"command\" is required"), "{err}");
        }
    }

    #[test]
    fn executor_config_rejects_wrong_types() {
        let cases = [
            json!({"command": 3}),
            json!({"command": ""}),
            json!({"command": "sleep", "args": [1]}),
            json!({"command": "sleep", "args": "1"}),
            json!({"command": "sleep", "env": {"A": 1}}),
            json!({"command": "sleep", "workDir": false}),
            json!({"command": "sleep", "comand": "x"}),
        ];
        for case in cases {
            assert!(parse(DriverKind::RawExec, case.clone()).is_err(), "{case}");
        }
    }

    #[test]
    fn oci_config_needs_exactly_one_root() {
        assert!(parse(DriverKind::Oci, json!({"command": "sh"})).is_err());
        assert!(parse(DriverKind::Oci, json!({"image": "a", "rootfs": "/r"})).is_err());
        assert!(parse(DriverKind::Oci, json!({"rootfs": "relative"})).is_err());
        let config = parse(DriverKind::Oci, json!({"image": "busybox"})).unwrap();
        assert_eq!(config.image.as_deref(), Some("busybox"));
        assert!(config.command.is_none());
        // `image` is an oci key only.
        assert!(parse(DriverKind::Exec, json!({"command": "sh", "image": "x"})).is_err());
    }

    #[test]
    fn driver_kinds_round_trip_their_names() {
        for kind in DriverKind::ALL {
            assert_eq!(DriverKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(DriverKind::from_name("mock"), None);
    }
}
