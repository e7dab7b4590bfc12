//! Names that come from the API (allocation uids, group and task names) and become path
//! components on the node: allocation and task directories, log files
//! `<task>.<stdout|stderr>.<n>`, executor directories and sockets, container ids and bundles.
//!
//! The servers refuse unsafe names at admission, but the agent does not trust them: every such
//! name passes through [`component`] (or [`alloc_uid`]) before it is joined to a directory.
//! A name that would leave its directory (`..`, `a/b`, an absolute path) is refused, never
//! rewritten.

use std::path::{Path, PathBuf};

use caravan_schemas::limits::MAX_TASK_NAME_LEN;

/// A name that cannot be one path component.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {name:?}: {reason}")]
pub struct UnsafeName {
    /// What the name names (`task name`, `allocation uid`, …).
    pub what: &'static str,
    pub name: String,
    pub reason: String,
}

/// `name` when it is safe as exactly one path component: not empty, not `.` or `..`, without
/// `/` or NUL, at most [`MAX_TASK_NAME_LEN`] bytes.
pub fn component<'a>(what: &'static str, name: &'a str) -> Result<&'a str, UnsafeName> {
    let reason = if name.is_empty() {
        "it is empty".to_string()
    } else if name == "." || name == ".." {
        "it must not be \".\" or \"..\"".to_string()
    } else if name.contains('/') {
        "it must not contain '/'".to_string()
    } else if name.contains('\0') {
        "it must not contain NUL".to_string()
    } else if name.len() > MAX_TASK_NAME_LEN {
        format!("it is longer than {MAX_TASK_NAME_LEN} bytes")
    } else {
        return Ok(name);
    };
    Err(UnsafeName {
        what,
        name: name.to_string(),
        reason,
    })
}

/// `uid` when it is a UUID in its hyphenated form (what the servers give every object).
pub fn alloc_uid(uid: &str) -> Result<&str, UnsafeName> {
    if uid.len() == 36 && uuid::Uuid::try_parse(uid).is_ok() {
        return Ok(uid);
    }
    Err(UnsafeName {
        what: "allocation uid",
        name: uid.to_string(),
        reason: "it must be a UUID".to_string(),
    })
}

/// `dir/name`, `name` checked by [`component`].
pub fn join(dir: &Path, what: &'static str, name: &str) -> Result<PathBuf, UnsafeName> {
    Ok(dir.join(component(what, name)?))
}

/// The allocation's directory, `<alloc_root>/<uid>`, the uid checked by [`alloc_uid`].
pub fn alloc_dir(alloc_root: &Path, uid: &str) -> Result<PathBuf, UnsafeName> {
    Ok(alloc_root.join(alloc_uid(uid)?))
}

/// Every name of an allocation that becomes a path: its uid, its group's and its tasks' names.
/// Returns every problem found.
pub fn check_alloc<'a>(
    uid: &str,
    group: &str,
    tasks: impl IntoIterator<Item = &'a str>,
) -> Result<(), Vec<UnsafeName>> {
    let mut problems: Vec<UnsafeName> = Vec::new();
    problems.extend(alloc_uid(uid).err());
    problems.extend(component("group name", group).err());
    for task in tasks {
        problems.extend(component("task name", task).err());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Checks the names of a task spec a driver is asked to start: the allocation id and task name
/// are plain components and the task directory is `<alloc_dir>/<task>`.
pub fn check_task_spec(spec: &crate::driver::TaskSpec) -> Result<(), UnsafeName> {
    component("allocation id", &spec.alloc_id)?;
    let task_dir = join(&spec.alloc_dir, "task name", &spec.task_name)?;
    if spec.task_dir != task_dir {
        return Err(UnsafeName {
            what: "task directory",
            name: spec.task_dir.display().to_string(),
            reason: format!("it must be {}", task_dir.display()),
        });
    }
    Ok(())
}

/// Creates `path` (and its parents) and makes it private to the agent's user (0700), also when
/// it existed: a task's `secrets/`.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_refuse_what_leaves_the_directory() {
        for good in [
            "web",
            "a..b",
            ".hidden",
            "web-1.2_x",
            "名前",
            &"x".repeat(128),
        ] {
            assert_eq!(component("task name", good), Ok(good), "{good:?}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "../../../../x",
            "/tmp/abs",
            "a/b",
            "x\0y",
            &"x".repeat(129),
        ] {
            let err = component("task name", bad).unwrap_err();
            assert_eq!(err.name, bad);
            assert!(err.to_string().starts_with("invalid task name"), "{err}");
        }
        assert_eq!(
            join(Path::new("/d"), "task name", "web").unwrap(),
            PathBuf::from("/d/web")
        );
        assert!(join(Path::new("/d"), "task name", "/etc").is_err());
    }

    #[test]
    fn private_dirs_are_0700() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let secrets = root.path().join("t/secrets");
        create_private_dir(&secrets).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&secrets), 0o700);
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&secrets).unwrap();
        assert_eq!(
            mode(&secrets),
            0o700,
            "an existing directory is made private too"
        );
    }

    #[test]
    fn allocation_uids_are_uuids() {
        let uid = "0b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c";
        assert_eq!(alloc_uid(uid), Ok(uid));
        assert_eq!(
            alloc_dir(Path::new("/data/alloc"), uid).unwrap(),
            Path::new("/data/alloc").join(uid)
        );
        for bad in [
            "",
            "u1",
            "..",
            "../../etc",
            "0b5f3c2e8a4d4f7e9c1a2d3e4f5a6b7c",
            "{0b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c}",
            "0b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c/..",
        ] {
            assert!(alloc_uid(bad).is_err(), "{bad:?}");
        }
        let problems = check_alloc("u1", "g", ["ok", "../x", "/tmp/abs"]).unwrap_err();
        let whats: Vec<_> = problems.iter().map(|p| p.what).collect();
        assert_eq!(whats, ["allocation uid", "task name", "task name"]);
        assert!(check_alloc(uid, "g", ["a", "b"]).is_ok());
    }
}
