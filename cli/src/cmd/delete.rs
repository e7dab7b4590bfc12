//! `caravan delete KIND NAME... | -f FILE`: delete objects and, by default, wait until they
//! are gone.

use std::time::{Duration, Instant};

use caravan_client::{Api, DeleteParams};
use caravan_schemas::Kind;
use serde_json::Value;

use crate::args::{DeleteArgs, DryRun};
use crate::cmd::Context;
use crate::manifest;
use crate::report::{self, Reported};
use crate::resource::{qualified_singular, resolve};

/// How often a waiting delete checks whether the object is gone.
const POLL: Duration = Duration::from_millis(250);

pub async fn run(ctx: &Context, args: DeleteArgs) -> anyhow::Result<()> {
    let targets = targets(ctx, &args)?;
    let dry_run = args.dry_run == DryRun::Server;
    let params = DeleteParams {
        dry_run,
        propagation_policy: Some("Background".into()),
        ..DeleteParams::default()
    };
    let suffix = if dry_run { " (server dry run)" } else { "" };
    let mut failures = 0;
    let mut deleted = Vec::new();
    for (kind, api, name) in targets {
        match api.delete(&name, &params).await {
            Ok(_) => {
                println!("{} \"{name}\" deleted{suffix}", qualified_singular(kind));
                deleted.push((api, name));
            }
            Err(e) if e.is_not_found() && args.ignore_not_found => {}
            Err(e) if e.is_connect() => return Err(e.into()),
            Err(e) => {
                eprintln!("{}", report::client_error(&e));
                failures += 1;
            }
        }
    }
    if args.wait && !dry_run {
        for (api, name) in deleted {
            wait_gone(&api, &name).await?;
        }
    }
    if failures > 0 {
        return Err(Reported(failures).into());
    }
    Ok(())
}

/// Every (kind, handle, name) to delete, from arguments or manifests.
fn targets(ctx: &Context, args: &DeleteArgs) -> anyhow::Result<Vec<(Kind, Api, String)>> {
    if args.files.is_empty() {
        let mut out = Vec::new();
        for target in resolve(&args.resources)? {
            if target.names.is_empty() {
                anyhow::bail!(
                    "resource(s) were provided, but no name was specified: name the {} to delete",
                    target.kind.plural()
                );
            }
            for name in target.names {
                out.push((target.kind, ctx.api(target.kind), name));
            }
        }
        return Ok(out);
    }
    let manifests = manifest::load(&args.files, &mut std::io::stdin())?;
    manifests
        .into_iter()
        .map(|m| {
            let kind_name = m.object.get("kind").and_then(Value::as_str).unwrap_or("");
            let kind = Kind::from_name(kind_name)
                .ok_or_else(|| anyhow::anyhow!("{}: unknown kind \"{kind_name}\"", m.source))?;
            let name = m
                .object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| anyhow::anyhow!("{}: a {kind} without a name", m.source))?;
            let namespace = m
                .object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(ctx.global.namespace());
            Ok((kind, ctx.client.api(kind, Some(namespace)), name.to_owned()))
        })
        .collect()
}

/// Polls until the object is gone (its finalizers have run).
async fn wait_gone(api: &Api, name: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut warned = false;
    while api.get_opt(name).await?.is_some() {
        if !warned && started.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "waiting for {} \"{name}\" to be removed (finalizers pending)...",
                qualified_singular(api.kind())
            );
            warned = true;
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}
