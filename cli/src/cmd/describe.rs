//! `caravan describe KIND NAME...`: a readable view of each object.

use std::time::SystemTime;

use caravan_client::ListParams;

use crate::args::DescribeArgs;
use crate::cmd::Context;
use crate::output::describe::describe;
use crate::report::{self, Reported};
use crate::resource::resolve;

pub async fn run(ctx: &Context, args: DescribeArgs) -> anyhow::Result<()> {
    let mut failures = 0;
    let mut first = true;
    for target in resolve(&args.resources)? {
        let api = ctx.api(target.kind);
        let objects = if target.names.is_empty() {
            api.list_all(&ListParams::default()).await?.items
        } else {
            let mut objects = Vec::new();
            for name in &target.names {
                match api.get(name).await {
                    Ok(object) => objects.push(object),
                    Err(e) if e.is_connect() => return Err(e.into()),
                    Err(e) => {
                        eprintln!("{}", report::client_error(&e));
                        failures += 1;
                    }
                }
            }
            objects
        };
        for object in objects {
            if !first {
                println!();
            }
            first = false;
            print!("{}", describe(&object, SystemTime::now()));
        }
    }
    if failures > 0 {
        return Err(Reported(failures).into());
    }
    Ok(())
}
