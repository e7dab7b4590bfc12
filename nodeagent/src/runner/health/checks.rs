//! What `healthCheck: checks` looks at besides the tasks: every check of the allocation's
//! services, passing. A check whose registration is not there yet (its task has not run, or
//! the group's services wait for the first main task) counts as not passing. Pure.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::services::CheckHealth;

/// One check as the health rules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckView {
    pub name: String,
    /// Since when it has been passing, while it is.
    pub passing_since: Option<SystemTime>,
}

/// One view per check expected: `expected` counts the checks of each owner's services (a
/// task, or `None` for the group), `live` are the checks registered. An owner with fewer
/// checks registered than expected gets views that are not passing for the missing ones.
pub fn views(expected: &BTreeMap<Option<String>, usize>, live: &[CheckHealth]) -> Vec<CheckView> {
    let mut out = Vec::new();
    for (owner, count) in expected {
        let mut found = 0;
        for check in live.iter().filter(|c| &c.task == owner) {
            found += 1;
            out.push(CheckView {
                name: check.name.clone(),
                passing_since: check.passing_since,
            });
        }
        let whose = match owner {
            Some(task) => format!("task {task}"),
            None => "the group".to_string(),
        };
        for _ in found..*count {
            out.push(CheckView {
                name: format!("of a service of {whose} (not registered)"),
                passing_since: None,
            });
        }
    }
    out
}

/// Since when every check has been passing (the epoch without checks), or the first check
/// that is not passing.
pub fn passing_since(checks: &[CheckView]) -> Result<SystemTime, &str> {
    let mut since = SystemTime::UNIX_EPOCH;
    for check in checks {
        match check.passing_since {
            Some(at) => since = since.max(at),
            None => return Err(check.name.as_str()),
        }
    }
    Ok(since)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn live(task: Option<&str>, name: &str, since: Option<u64>) -> CheckHealth {
        CheckHealth {
            task: task.map(str::to_string),
            name: name.into(),
            passing_since: since.map(at),
        }
    }

    #[test]
    fn missing_registrations_count_as_not_passing() {
        let expected = BTreeMap::from([(None, 1), (Some("web".to_string()), 2)]);
        let views = views(&expected, &[live(Some("web"), "http", Some(3))]);
        assert_eq!(views.len(), 3);
        assert_eq!(views[0].name, "of a service of the group (not registered)");
        assert_eq!(views[1].name, "http");
        assert_eq!(views[2].name, "of a service of task web (not registered)");
        assert_eq!(passing_since(&views), Err(views[0].name.as_str()));
    }

    #[test]
    fn all_passing_since_the_latest() {
        let expected = BTreeMap::from([(Some("web".to_string()), 2)]);
        let live = [
            live(Some("web"), "a", Some(3)),
            live(Some("web"), "b", Some(7)),
            live(Some("other"), "not expected", None),
        ];
        let views = views(&expected, &live);
        assert_eq!(passing_since(&views), Ok(at(7)));
        assert_eq!(passing_since(&[]), Ok(SystemTime::UNIX_EPOCH));
        let failing = [CheckView {
            name: "c".into(),
            passing_since: None,
        }];
        assert_eq!(passing_since(&failing), Err("c"));
    }
}
