//! [`tasks_updated`]: whether moving an allocation from one version of its group to another
//! needs new tasks (a destructive update) or can be done in place (Nomad's `tasksUpdated`).

use std::collections::BTreeMap;

use caravan_schemas::Job;
use caravan_schemas::job::{Task, TaskGroup};

/// Metadata a task sees: the job's, overridden by the group's, overridden by the task's.
fn combined_meta<'a>(
    job: &'a Job,
    group: &'a TaskGroup,
    task: &'a Task,
) -> BTreeMap<&'a str, &'a str> {
    job.spec
        .meta
        .iter()
        .chain(&group.meta)
        .chain(&task.meta)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Whether the tasks of `group` differ between `old_job` and `new_job` in a way that needs the
/// allocation replaced: task set, driver, config, env, user, resources, lifecycle, combined meta
/// (visible to tasks as `NOMAD_META_*`), ephemeral disk or network. Counts, policies and
/// placement rules are not destructive.
pub fn tasks_updated(old_job: &Job, old: &TaskGroup, new_job: &Job, new: &TaskGroup) -> bool {
    if old.tasks.len() != new.tasks.len()
        || old.ephemeral_disk != new.ephemeral_disk
        || old.network != new.network
    {
        return true;
    }
    old.tasks.iter().any(|a| {
        let Some(b) = new.tasks.iter().find(|t| t.name == a.name) else {
            return true;
        };
        a.driver != b.driver
            || a.user != b.user
            || a.config != b.config
            || a.env != b.env
            || a.resources != b.resources
            || a.lifecycle != b.lifecycle
            || combined_meta(old_job, old, a) != combined_meta(new_job, new, b)
    })
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;

    use super::*;

    fn changed(edit: impl FnOnce(&mut Job)) -> bool {
        let old = mock::job("web");
        let mut new = old.clone();
        edit(&mut new);
        tasks_updated(&old, &old.spec.groups[0], &new, &new.spec.groups[0])
    }

    #[test]
    fn destructive_fields() {
        assert!(changed(
            |j| j.spec.groups[0].tasks[0].driver = "raw_exec".into()
        ));
        assert!(changed(|j| {
            j.spec.groups[0].tasks[0].env.insert("X".into(), "1".into());
        }));
        assert!(changed(|j| {
            j.spec.groups[0].tasks[0]
                .config
                .insert("args".into(), "x".into());
        }));
        assert!(changed(|j| {
            if let Some(r) = j.spec.groups[0].tasks[0].resources.as_mut() {
                r.cpu = Some(1000);
            }
        }));
        assert!(changed(
            |j| j.spec.groups[0].tasks[0].user = Some("nobody".into())
        ));
        assert!(changed(|j| {
            j.spec.meta.insert("owner".into(), "someone-else".into());
        }));
        let mut second = mock::job("web").spec.groups[0].tasks[0].clone();
        second.name = "sidecar".into();
        assert!(changed(|j| j.spec.groups[0].tasks.push(second)));
    }

    #[test]
    fn in_place_fields() {
        assert!(!changed(|_| {}));
        assert!(!changed(|j| j.spec.groups[0].count = Some(3)));
        assert!(!changed(|j| j.spec.priority = Some(90)));
        assert!(!changed(|j| j.spec.groups[0].restart = None));
        assert!(!changed(|j| j.spec.constraints.clear()));
        assert!(!changed(
            |j| j.spec.groups[0].tasks[0].kill_timeout = Some("30s".into())
        ));
    }
}
