//! `caravan job scale JOB [GROUP] COUNT`: sets a group's count with a JSON patch that first
//! tests the group's name at its index (so a concurrent change of the groups fails the patch
//! instead of scaling another group), then follows the rollout as `job run` does. The group
//! may be left out when the job has only one.

use std::collections::BTreeSet;

use anyhow::{Context as _, bail};
use caravan_client::PatchParams;
use caravan_schemas::{Job, Kind};
use serde_json::{Value, json};

use super::ScaleArgs;
use super::follow::follow_write;
use super::run::decode;
use super::wait::existing_allocs;
use crate::cmd::Context;

/// A scale request: the group (when named) and the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub group: Option<String>,
    pub count: u32,
}

/// The group to scale, found in the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its index in `spec.groups`.
    pub index: usize,
    pub group: String,
    /// Its count now.
    pub current: u32,
}

pub async fn run(ctx: &Context, args: ScaleArgs) -> anyhow::Result<i32> {
    let namespace = ctx.global.namespace().to_owned();
    let name = args.name.as_str();
    let request = parse(&args.rest).map_err(anyhow::Error::msg)?;
    let api = ctx.api(Kind::Job);
    let job = decode(api.get(name).await?)?;
    let target = target(&job, request.group.as_deref()).map_err(anyhow::Error::msg)?;
    if target.current == request.count {
        println!(
            "Group {:?} of job {name:?} already has count {}: nothing to change",
            target.group, request.count
        );
        return Ok(0);
    }
    let existed = if args.detach {
        BTreeSet::new()
    } else {
        existing_allocs(&ctx.client, &namespace, name).await?
    };
    let patch = patch(&target, request.count);
    let written = match api.patch_json(name, &patch, &PatchParams::default()).await {
        Ok(written) => decode(written)?,
        Err(e) if e.code() == Some(422) && is_failed_test(&e) => {
            bail!(
                "the groups of job {name:?} changed while scaling (group {:?} is no longer at \
                 index {}); nothing was written: run the command again",
                target.group,
                target.index
            )
        }
        Err(e) => return Err(e).with_context(|| format!("error scaling job {name:?}")),
    };
    println!(
        "Group {:?} of job {name:?} scaled from {} to {}: the job is now at version {}",
        target.group,
        target.current,
        request.count,
        written.version()
    );
    if args.detach {
        return Ok(0);
    }
    follow_write(ctx, &namespace, &written, existed, args.timeout).await
}

/// `[GROUP] COUNT` from the command line.
pub fn parse(rest: &[String]) -> Result<Request, String> {
    let (group, count) = match rest {
        [count] => (None, count),
        [group, count] => (Some(group.clone()), count),
        _ => return Err("expected [GROUP] COUNT".into()),
    };
    let count = count
        .parse()
        .map_err(|_| format!("invalid count {count:?}: expected a whole number of allocations"))?;
    Ok(Request { group, count })
}

/// The group to scale: the named one, or the job's only group when none is named.
pub fn target(job: &Job, group: Option<&str>) -> Result<Target, String> {
    let name = job.metadata.name();
    let groups = &job.spec.groups;
    let names = || {
        groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let index = match group {
        Some(wanted) => groups
            .iter()
            .position(|g| g.name == wanted)
            .ok_or_else(|| {
                format!(
                    "job {name:?} has no group {wanted:?}; its groups: {}",
                    names()
                )
            })?,
        None if groups.len() == 1 => 0,
        None if groups.is_empty() => return Err(format!("job {name:?} has no groups")),
        None => {
            return Err(format!(
                "job {name:?} has {} groups ({}): name the one to scale: caravan job scale \
                 {name} GROUP COUNT",
                groups.len(),
                names()
            ));
        }
    };
    let group = &groups[index];
    Ok(Target {
        index,
        group: group.name.clone(),
        current: group.count.unwrap_or(1),
    })
}

/// The JSON patch: test the group's name at its index, then replace its count.
pub fn patch(target: &Target, count: u32) -> Value {
    let at = format!("/spec/groups/{}", target.index);
    json!([
        {"op": "test", "path": format!("{at}/name"), "value": target.group},
        {"op": "replace", "path": format!("{at}/count"), "value": count},
    ])
}

/// Whether a 422 is the server refusing a JSON patch whose operations did not apply.
fn is_failed_test(err: &caravan_client::Error) -> bool {
    let Some(status) = err.status() else {
        return false;
    };
    let causes = status.details.iter().flat_map(|d| &d.causes);
    std::iter::once(status.message.as_str())
        .chain(causes.map(|c| c.message.as_str()))
        .any(|m| m.contains("JSON patch could not be applied"))
}

#[cfg(test)]
mod tests {
    use caravan_schemas::job::TaskGroup;
    use caravan_schemas::mock;

    use super::*;

    fn two_groups() -> Job {
        let mut job = mock::job("web");
        job.spec.groups.push(TaskGroup {
            name: "cache".into(),
            count: Some(2),
            ..TaskGroup::default()
        });
        job
    }

    #[test]
    fn the_count_comes_last_and_the_group_is_optional() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse(&args(&["5"])).unwrap(),
            Request {
                group: None,
                count: 5
            }
        );
        assert_eq!(
            parse(&args(&["cache", "0"])).unwrap(),
            Request {
                group: Some("cache".into()),
                count: 0
            }
        );
        assert_eq!(
            parse(&args(&["cache", "-1"])).unwrap_err(),
            "invalid count \"-1\": expected a whole number of allocations"
        );
        assert!(parse(&args(&["a", "b", "3"])).is_err());
    }

    #[test]
    fn the_only_group_is_taken_when_none_is_named() {
        let job = mock::job("web");
        assert_eq!(
            target(&job, None).unwrap(),
            Target {
                index: 0,
                group: "web".into(),
                current: 10
            }
        );
        let job = two_groups();
        assert_eq!(
            target(&job, None).unwrap_err(),
            "job \"web\" has 2 groups (web, cache): name the one to scale: caravan job scale web \
             GROUP COUNT"
        );
        assert_eq!(target(&job, Some("cache")).unwrap().index, 1);
        assert_eq!(
            target(&job, Some("db")).unwrap_err(),
            "job \"web\" has no group \"db\"; its groups: web, cache"
        );
    }

    #[test]
    fn the_patch_tests_the_group_before_replacing_its_count() {
        let job = two_groups();
        let t = target(&job, Some("cache")).unwrap();
        assert_eq!(
            patch(&t, 4),
            json!([
                {"op": "test", "path": "/spec/groups/1/name", "value": "cache"},
                {"op": "replace", "path": "/spec/groups/1/count", "value": 4},
            ])
        );
    }
}
