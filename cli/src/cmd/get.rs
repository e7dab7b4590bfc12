//! `caravan get`: tables rendered from the server's Table responses, whole objects as
//! YAML/JSON, names, and `--watch`.

use std::time::{Duration, SystemTime};

use anyhow::bail;
use caravan_client::{Api, IncludeObject, ListParams, Table, WatchParams, WireEvent};
use caravan_schemas::Kind;
use futures::StreamExt;
use serde_json::Value;

use crate::args::{GetArgs, OutputFormat};
use crate::cmd::Context;
use crate::output::object::{list, name_of, to_json, to_yaml};
use crate::output::table::{TableLayout, TableOptions};
use crate::report::{self, Reported};
use crate::resource::{Target, resolve};

pub async fn run(ctx: &Context, args: GetArgs) -> anyhow::Result<()> {
    let targets = resolve(&args.resources)?;
    if args.watch || args.watch_only {
        let [target] = targets.as_slice() else {
            bail!("you may only specify a single resource type when watching");
        };
        if target.names.len() > 1 {
            bail!("you may only watch a single object by name");
        }
        return watch(ctx, &args, target).await;
    }
    let mut failures = 0;
    let mut printed_any = false;
    let mut objects = Vec::new();
    for target in &targets {
        let api = api_for(ctx, &args, target.kind);
        match args.output {
            None | Some(OutputFormat::Wide) => {
                let (table, errors) = fetch_table(&api, &args, target).await?;
                failures += errors;
                if table.rows.is_empty() {
                    if target.names.is_empty() {
                        eprintln!("{}", no_resources(ctx, &args, target.kind));
                    }
                    continue;
                }
                if printed_any {
                    println!();
                }
                printed_any = true;
                let mut layout =
                    TableLayout::new(&table.column_definitions, options(&args, target.kind));
                print!("{}", layout.render(&table.rows, true, SystemTime::now()));
            }
            Some(format) => {
                let (mut found, errors) = fetch_objects(&api, &args, target).await?;
                failures += errors;
                if format == OutputFormat::Name {
                    for object in &found {
                        println!("{}", name_of(target.kind, object));
                    }
                } else {
                    objects.append(&mut found);
                }
            }
        }
    }
    if let Some(format @ (OutputFormat::Json | OutputFormat::Yaml)) = args.output {
        let single = targets.len() == 1 && targets[0].names.len() == 1 && objects.len() == 1;
        let value = if single {
            objects.remove(0)
        } else {
            list(objects)
        };
        print!("{}", render_object(format, &value)?);
    }
    if failures > 0 {
        return Err(Reported(failures).into());
    }
    Ok(())
}

fn api_for(ctx: &Context, args: &GetArgs, kind: Kind) -> Api {
    if args.all_namespaces {
        ctx.client.all_namespaces(kind)
    } else {
        ctx.api(kind)
    }
}

fn options(args: &GetArgs, kind: Kind) -> TableOptions {
    TableOptions {
        wide: args.output == Some(OutputFormat::Wide),
        namespace_column: args.all_namespaces && kind.namespaced(),
    }
}

/// kubectl's message for an empty list.
fn no_resources(ctx: &Context, args: &GetArgs, kind: Kind) -> String {
    if args.all_namespaces || !kind.namespaced() {
        "No resources found".to_owned()
    } else {
        format!(
            "No resources found in {} namespace.",
            ctx.global.namespace()
        )
    }
}

fn list_params(args: &GetArgs, continue_token: Option<String>) -> ListParams {
    ListParams {
        label_selector: args.selector.clone(),
        field_selector: args.field_selector.clone(),
        limit: Some(args.chunk_size).filter(|&n| n > 0),
        continue_token,
    }
}

/// The table of every object asked for (following pages), and how many names failed.
async fn fetch_table(api: &Api, args: &GetArgs, target: &Target) -> anyhow::Result<(Table, usize)> {
    if target.names.is_empty() {
        return Ok((list_table(api, args).await?, 0));
    }
    let mut table = Table::default();
    let mut failures = 0;
    for name in &target.names {
        match api.get_table(name, IncludeObject::Metadata).await {
            Ok(one) => {
                if table.column_definitions.is_empty() {
                    table.column_definitions = one.column_definitions;
                }
                table.rows.extend(one.rows);
            }
            Err(e) if e.is_connect() => return Err(e.into()),
            Err(e) => {
                eprintln!("{}", report::client_error(&e));
                failures += 1;
            }
        }
    }
    Ok((table, failures))
}

/// Lists every page as one table; the resource version is the first page's.
async fn list_table(api: &Api, args: &GetArgs) -> anyhow::Result<Table> {
    let mut table = api
        .list_table(&list_params(args, None), IncludeObject::Metadata)
        .await?;
    let mut next = table.metadata.r#continue.take().filter(|c| !c.is_empty());
    while let Some(token) = next {
        let page = api
            .list_table(&list_params(args, Some(token)), IncludeObject::Metadata)
            .await?;
        table.rows.extend(page.rows);
        next = page.metadata.r#continue.filter(|c| !c.is_empty());
    }
    Ok(table)
}

/// The full objects asked for, and how many names failed.
async fn fetch_objects(
    api: &Api,
    args: &GetArgs,
    target: &Target,
) -> anyhow::Result<(Vec<Value>, usize)> {
    if target.names.is_empty() {
        return Ok((api.list_all(&list_params(args, None)).await?.items, 0));
    }
    let mut objects = Vec::new();
    let mut failures = 0;
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
    Ok((objects, failures))
}

fn render_object(format: OutputFormat, value: &Value) -> anyhow::Result<String> {
    Ok(match format {
        OutputFormat::Json => to_json(value),
        _ => to_yaml(value)?,
    })
}

/// How watched objects are printed.
enum Printer {
    /// Rows under one header; `None` until column definitions arrive.
    Table {
        layout: Option<TableLayout>,
        options: TableOptions,
        header_printed: bool,
    },
    Objects {
        kind: Kind,
        format: OutputFormat,
    },
}

impl Printer {
    fn table(&mut self, table: &Table) {
        let Printer::Table {
            layout,
            options,
            header_printed,
        } = self
        else {
            return;
        };
        if layout.is_none() && !table.column_definitions.is_empty() {
            *layout = Some(TableLayout::new(&table.column_definitions, *options));
        }
        let Some(layout) = layout else {
            return;
        };
        if table.rows.is_empty() {
            return;
        }
        print!(
            "{}",
            layout.render(&table.rows, !*header_printed, SystemTime::now())
        );
        *header_printed = true;
    }

    fn object(&self, object: &Value) -> anyhow::Result<()> {
        let Printer::Objects { kind, format } = self else {
            return Ok(());
        };
        match format {
            OutputFormat::Name => println!("{}", name_of(*kind, object)),
            OutputFormat::Json => print!("{}", to_json(object)),
            _ => print!("---\n{}", to_yaml(object)?),
        }
        Ok(())
    }

    fn is_table(&self) -> bool {
        matches!(self, Printer::Table { .. })
    }
}

/// `-w` / `--watch-only`: list (unless watch-only), then print every change until
/// interrupted, resuming dropped watches and re-listing when the version expires.
async fn watch(ctx: &Context, args: &GetArgs, target: &Target) -> anyhow::Result<()> {
    let api = api_for(ctx, args, target.kind);
    let mut args_list = list_params(args, None);
    if let Some(name) = target.names.first() {
        let by_name = format!("metadata.name={name}");
        args_list.field_selector = Some(match &args_list.field_selector {
            Some(s) if !s.is_empty() => format!("{s},{by_name}"),
            _ => by_name,
        });
    }
    let mut printer = match args.output {
        None | Some(OutputFormat::Wide) => Printer::Table {
            layout: None,
            options: options(args, target.kind),
            header_printed: false,
        },
        Some(format) => Printer::Objects {
            kind: target.kind,
            format,
        },
    };
    let watch_params = WatchParams::from_list(&args_list);
    let mut resource_version =
        list_and_print(&api, &args_list, &mut printer, !args.watch_only).await?;
    loop {
        let stream = if printer.is_table() {
            api.watch_table(&watch_params, &resource_version, IncludeObject::Metadata)
                .await
        } else {
            api.watch(&watch_params, &resource_version).await
        };
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) if e.is_expired() => {
                resource_version = list_and_print(&api, &args_list, &mut printer, true).await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    tracing::debug!(error = %e, "watch interrupted, resuming");
                    break;
                }
            };
            if let Some(rv) = event_version(&event) {
                resource_version = rv;
            }
            match event {
                WireEvent::Error(status) if status.code == 410 => {
                    resource_version = list_and_print(&api, &args_list, &mut printer, true).await?;
                    break;
                }
                WireEvent::Error(status) => return Err(caravan_client::Error::Api(status).into()),
                WireEvent::Bookmark(_) => {}
                WireEvent::Added(object)
                | WireEvent::Modified(object)
                | WireEvent::Deleted(object) => {
                    if printer.is_table() {
                        printer.table(&Table::from_response(object)?);
                    } else {
                        printer.object(&object)?;
                    }
                }
            }
        }
        // The server ended the watch (timeout) or it broke: resume shortly from where it was.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lists, printing the objects when `print` is set, and returns the version to watch from.
async fn list_and_print(
    api: &Api,
    params: &ListParams,
    printer: &mut Printer,
    print: bool,
) -> anyhow::Result<String> {
    let mut params = params.clone();
    if !print {
        // Only the version is needed.
        params.limit = Some(1);
    }
    if printer.is_table() {
        let table = api.list_table(&params, IncludeObject::Metadata).await?;
        let resource_version = table.metadata.resource_version.clone();
        if print {
            let mut all = table;
            let mut next = all.metadata.r#continue.take().filter(|c| !c.is_empty());
            while let Some(token) = next {
                params.continue_token = Some(token);
                let page = api.list_table(&params, IncludeObject::Metadata).await?;
                all.rows.extend(page.rows);
                next = page.metadata.r#continue.filter(|c| !c.is_empty());
            }
            printer.table(&all);
        }
        return Ok(resource_version);
    }
    let list = if print {
        api.list_all(&params).await?
    } else {
        api.list(&params).await?
    };
    if print {
        for object in &list.items {
            printer.object(object)?;
        }
    }
    Ok(list.metadata.resource_version)
}

/// The resource version an event moves the watch to: the object's, or for a Table event its
/// row object's.
fn event_version(event: &WireEvent) -> Option<String> {
    if let Some(rv) = event.resource_version() {
        return Some(rv.to_owned());
    }
    event
        .object()?
        .pointer("/rows/0/object/metadata/resourceVersion")?
        .as_str()
        .filter(|rv| !rv.is_empty())
        .map(str::to_owned)
}
