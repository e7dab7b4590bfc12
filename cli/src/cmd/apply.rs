//! `caravan apply -f`: create or update objects from manifests, client-side (three-way merge
//! patch, kubectl's last-applied annotation) or server-side (apply patch).

use anyhow::{Context as _, bail};
use caravan_client::{Api, PatchParams, PostParams};
use caravan_schemas::{API_VERSION, Kind};
use serde_json::Value;

use crate::args::{ApplyArgs, DryRun};
use crate::cmd::Context;
use crate::manifest::{self, Manifest};
use crate::merge_patch::{recorded, three_way, with_last_applied};
use crate::report::{self, Reported};
use crate::resource::qualified_singular;

/// The field manager recorded for client-side apply, as kubectl names it.
const CLIENT_SIDE_MANAGER: &str = "kubectl-client-side-apply";

pub async fn run(ctx: &Context, args: ApplyArgs) -> anyhow::Result<()> {
    let mut manifests = manifest::load(&args.files, &mut std::io::stdin())?;
    if manifests.is_empty() {
        bail!("no objects passed to apply");
    }
    // Namespaces first, so objects in them can be created in the same run.
    manifests.sort_by_key(|m| m.object.get("kind").and_then(Value::as_str) != Some("Namespace"));
    let mut failures = 0;
    for manifest in manifests {
        match apply_one(ctx, &args, &manifest).await {
            Ok(line) => println!("{line}"),
            Err(e) if report::is_unreachable(&e) => return Err(e),
            Err(e) => {
                if let Some(message) = report::render(&e) {
                    eprintln!("{message}");
                }
                failures += 1;
            }
        }
    }
    if failures > 0 {
        return Err(Reported(failures).into());
    }
    Ok(())
}

/// Where an object goes: its kind, handle and name, with the namespace filled in.
struct Resolved {
    kind: Kind,
    api: Api,
    name: String,
    object: Value,
}

/// Checks a manifest's kind and name and settles its namespace.
fn resolve(ctx: &Context, manifest: &Manifest) -> anyhow::Result<Resolved> {
    let object = &manifest.object;
    let source = &manifest.source;
    let kind_name = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or(API_VERSION);
    let kind = Kind::from_name(kind_name).filter(|_| api_version == API_VERSION);
    let Some(kind) = kind else {
        bail!(
            "resource mapping not found for kind \"{kind_name}\" in version \"{api_version}\" ({source}): ensure it is a caravan.dev/v1 kind"
        );
    };
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if name.is_empty() {
        bail!(
            "error when retrieving current configuration of {kind} from {source}: resource name may not be empty"
        );
    }
    let mut object = object.clone();
    if !kind.namespaced() {
        return Ok(Resolved {
            kind,
            api: ctx.client.api(kind, None),
            name,
            object,
        });
    }
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
    object["metadata"]["namespace"] = Value::String(namespace.clone());
    Ok(Resolved {
        kind,
        api: ctx.client.api(kind, Some(&namespace)),
        name,
        object,
    })
}

/// Applies one object; returns the line to print (`job.caravan.dev/web created`).
async fn apply_one(ctx: &Context, args: &ApplyArgs, manifest: &Manifest) -> anyhow::Result<String> {
    let Resolved {
        kind,
        api,
        name,
        object,
    } = resolve(ctx, manifest)?;
    let dry_run = args.dry_run == DryRun::Server;
    let suffix = if dry_run { " (server dry run)" } else { "" };
    let prefix = format!("{}/{name}", qualified_singular(kind));

    if args.server_side {
        let params = PatchParams {
            dry_run,
            field_manager: Some(args.field_manager.clone()),
            force: true,
        };
        api.apply(&name, &object, &params)
            .await
            .with_context(|| format!("error applying {prefix} from {}", manifest.source))?;
        return Ok(format!("{prefix} serverside-applied{suffix}"));
    }

    let modified = with_last_applied(&object);
    let Some(current) = api.get_opt(&name).await? else {
        let params = PostParams {
            dry_run,
            field_manager: Some(CLIENT_SIDE_MANAGER.into()),
        };
        api.create(&modified, &params).await?;
        return Ok(format!("{prefix} created{suffix}"));
    };
    let patch = three_way(recorded(&current).as_ref(), &modified, &current);
    if patch.as_object().is_some_and(|p| p.is_empty()) {
        return Ok(format!("{prefix} unchanged{suffix}"));
    }
    let params = PatchParams {
        dry_run,
        field_manager: Some(CLIENT_SIDE_MANAGER.into()),
        force: false,
    };
    let updated = api.patch_merge(&name, &patch, &params).await?;
    // A merge patch replaces lists whole, so it is rarely empty; the patch changed nothing when
    // the object is the same apart from what others write meanwhile (status, resourceVersion).
    let verb = if !dry_run && configuration(&updated) == configuration(&current) {
        "unchanged"
    } else {
        "configured"
    };
    Ok(format!("{prefix} {verb}{suffix}"))
}

/// What `apply` configures of an object: all of it but `status` and the resourceVersion.
fn configuration(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("resourceVersion");
    }
    object
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::configuration;

    #[test]
    fn a_status_or_resource_version_written_meanwhile_is_not_a_configuration_change() {
        let current =
            json!({"metadata": {"name": "web", "resourceVersion": "4"}, "spec": {"count": 1}});
        let mut updated = current.clone();
        updated["metadata"]["resourceVersion"] = json!("5");
        updated["status"] = json!({"status": "running"});
        assert_eq!(configuration(&updated), configuration(&current));
        updated["metadata"]["labels"] = json!({"tier": "a"});
        assert_ne!(configuration(&updated), configuration(&current));
    }
}
