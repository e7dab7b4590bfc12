//! `caravan job run` (registers the file's Job as a whole, as Nomad does: created, or replacing
//! the stored one, so a field left out of the file is gone from the job) and
//! `caravan job stop` (merge patch `spec.stop: true`, or delete with `--purge`), each then
//! following the Evaluation the server creates for the write; `run` then follows the new
//! version's Deployment to its end when it gets one (`follow.rs`).

use std::collections::BTreeSet;

use anyhow::{Context as _, bail};
use caravan_client::{Api, DeleteParams, PatchParams, PostParams};
use caravan_schemas::evaluation::TriggeredBy;
use caravan_schemas::{API_VERSION, Job, Kind};
use serde_json::{Value, json};

use super::follow::follow_write;
use super::format::revision;
use super::monitor::{Target, exit_code};
use super::wait::{existing_allocs, monitor};
use super::{RunArgs, StopArgs};
use crate::cmd::Context;
use crate::manifest::{self, Manifest};

/// Reads the one Job of `file` and settles its namespace as `caravan apply` does. A file that
/// does not set `spec.stop` sets it to false: running a stopped job starts it again, as in
/// Nomad.
pub fn load_job(ctx: &Context, file: &std::path::Path) -> anyhow::Result<(String, String, Value)> {
    let manifests = manifest::load(&[file.to_path_buf()], &mut std::io::stdin())?;
    let [Manifest { source, object }] = manifests.as_slice() else {
        bail!(
            "{} holds {} objects: expected one Job",
            file.display(),
            manifests.len()
        );
    };
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind != Kind::Job.name() || api_version != API_VERSION {
        bail!("{source} holds a {api_version} {kind}: expected a {API_VERSION} Job");
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .with_context(|| format!("{source}: the Job has no metadata.name"))?
        .to_owned();
    let own = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    let namespace = match (own, ctx.global.namespace.as_deref()) {
        (Some(own), Some(flag)) if own != flag => bail!(
            "the namespace from the provided object \"{own}\" does not match the namespace \"{flag}\". You must pass '--namespace={own}' to perform this operation."
        ),
        (Some(own), _) => own.to_owned(),
        (None, _) => ctx.global.namespace().to_owned(),
    };
    let mut object = object.clone();
    object["metadata"]["namespace"] = Value::String(namespace.clone());
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("stop").or_insert(Value::Bool(false));
    }
    Ok((namespace, name, object))
}

/// Decodes a Job the server answered.
pub(super) fn decode(value: Value) -> anyhow::Result<Job> {
    serde_json::from_value(value).context("the server returned an undecodable Job")
}

fn generation(job: Option<&Job>) -> Option<i64> {
    job.and_then(|j| j.metadata.generation)
}

pub async fn run(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    let (namespace, name, object) = load_job(ctx, &args.file)?;
    let api = ctx.client.api(Kind::Job, Some(&namespace));
    let before = api.get_opt(&name).await?.map(decode).transpose()?;
    let existed = if args.detach {
        BTreeSet::new()
    } else {
        existing_allocs(&ctx.client, &namespace, &name).await?
    };
    let registered = register(&api, &name, &object, before.as_ref())
        .await
        .with_context(|| format!("error submitting job {name:?}"))?;
    let job = decode(registered)?;
    let version = job.version();
    if args.detach {
        println!("Job registration successful");
        println!("Job {name:?} is at version {version}");
        return Ok(0);
    }
    if before.is_some() && generation(before.as_ref()) == generation(Some(&job)) {
        println!("Job {name:?} is unchanged (version {version}): no evaluation was created");
        return Ok(0);
    }
    follow_write(ctx, &namespace, &job, existed, args.timeout).await
}

/// Writes `object` as the whole job: created when there is none, else replacing the stored
/// one at the revision it was read at; a concurrent write makes it read and replace again.
async fn register(
    api: &Api,
    name: &str,
    object: &Value,
    before: Option<&Job>,
) -> caravan_client::Result<Value> {
    let mut current = before.and_then(|job| job.metadata.resource_version.clone());
    let mut conflicts = 0;
    loop {
        let result = match &current {
            None => api.create(object, &PostParams::default()).await,
            Some(rv) => {
                let mut object = object.clone();
                object["metadata"]["resourceVersion"] = Value::String(rv.clone());
                api.replace(name, &object, &PostParams::default()).await
            }
        };
        match result {
            Err(e) if e.is_conflict() && conflicts < 3 => {
                conflicts += 1;
                current = api.get_opt(name).await?.and_then(|job| {
                    job["metadata"]["resourceVersion"]
                        .as_str()
                        .map(str::to_owned)
                });
            }
            other => return other,
        }
    }
}

pub async fn stop(ctx: &Context, args: StopArgs) -> anyhow::Result<i32> {
    let namespace = ctx.global.namespace().to_owned();
    let name = args.name.clone();
    let api: Api = ctx.api(Kind::Job);
    let current = decode(api.get(&name).await?)?;
    let existed = if args.detach {
        BTreeSet::new()
    } else {
        existing_allocs(&ctx.client, &namespace, &name).await?
    };
    let (written, verb) = if args.purge {
        api.delete(&name, &DeleteParams::default())
            .await
            .with_context(|| format!("error purging job {name:?}"))?;
        (current.clone(), "purged")
    } else if current.spec.stop {
        println!("Job {name:?} is already stopped");
        return Ok(0);
    } else {
        let patch = json!({"spec": {"stop": true}});
        let patched = api
            .patch_merge(&name, &patch, &PatchParams::default())
            .await
            .with_context(|| format!("error stopping job {name:?}"))?;
        (decode(patched)?, "stopped")
    };
    if args.detach {
        println!("Job {name:?} {verb}");
        return Ok(0);
    }
    let target = Target {
        job: name,
        // A delete answers no new revision: any evaluation after the last write qualifies.
        after: revision(&written.metadata),
        min_version: written.version(),
        triggers: vec![TriggeredBy::JobDeregister, TriggeredBy::JobRegister],
    };
    let outcome = monitor(&ctx.client, &namespace, target, existed, args.timeout).await?;
    Ok(exit_code(&outcome))
}
