//! `caravan bench api`: concurrent creates, updates, gets and lists of ~size-byte documents,
//! one phase per operation, closed loop (as fast as answered) or open loop at a fixed offered
//! rate, against Caravan or, with `--etcd`, against etcd's JSON gateway.
//!
//! Each client owns the objects it created: it updates them in turn (Caravan: a replace with
//! the last `resourceVersion` it was given; on a conflict, because a controller wrote the
//! object, it reads the object and retries once) and reads them back.
//! At the end the run reads every stored document and fails unless there are exactly the
//! acknowledged creates, carrying exactly the acknowledged updates.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::ValueEnum;

use super::ApiBenchArgs;
use super::report::{histogram, summary};
use super::target::{NAME, RV, Request, Target, UPDATES_PLACEHOLDER, resource_version, updates_of};

/// One measured phase of `bench api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Op {
    Create,
    Update,
    Get,
    List,
}

/// Objects a client creates, unmeasured, before an update or get phase when it has none.
const SEED_PER_CLIENT: usize = 8;

/// An object a client created, with what it last heard of it.
#[derive(Debug, Clone)]
struct Owned {
    name: String,
    resource_version: String,
    updates: u64,
}

/// One client's objects, carried from phase to phase.
#[derive(Debug, Default)]
struct ClientState {
    id: usize,
    owned: Vec<Owned>,
    next_seq: u64,
    cursor: usize,
}

struct PhaseResult {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    latency: hdrhistogram::Histogram<u64>,
}

/// The documents a phase writes, from the target's templates.
struct Docs {
    create: String,
    update: String,
}

impl Docs {
    fn create(&self, name: &str) -> String {
        self.create
            .replace(NAME, name)
            .replace(UPDATES_PLACEHOLDER, "0")
    }

    fn update(&self, o: &Owned) -> String {
        self.update
            .replace(NAME, &o.name)
            .replace(UPDATES_PLACEHOLDER, &(o.updates + 1).to_string())
            .replace(RV, &o.resource_version)
    }
}

pub async fn run(
    base: &str,
    args: ApiBenchArgs,
    credentials: &super::Credentials,
) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(!args.ops.is_empty(), "--ops names no operation");
    let builder = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30));
    let http = credentials.apply(builder)?.build()?;
    let target =
        std::sync::Arc::new(Target::prepare(&http, base, args.etcd.as_deref(), "bench-api").await?);
    let (create, update) = target.templates(args.size);
    let docs = std::sync::Arc::new(Docs { create, update });
    println!(
        "bench api: {} clients, ~{} B documents, {} for {:?} each{}; {}",
        args.clients,
        args.size,
        args.ops
            .iter()
            .map(|o| format!("{o:?}").to_lowercase())
            .collect::<Vec<_>>()
            .join(", "),
        args.duration,
        args.rate
            .map(|r| format!(" at {r:.0}/s offered"))
            .unwrap_or_default(),
        target.describe(),
    );
    let mut clients: Vec<ClientState> = (0..args.clients)
        .map(|id| ClientState {
            id,
            ..ClientState::default()
        })
        .collect();
    let (mut creates, mut updates) = (0u64, 0u64);
    let mut summaries = Vec::new();
    for &op in &args.ops {
        let mut tasks = Vec::with_capacity(clients.len());
        let start = Instant::now();
        for state in clients.drain(..) {
            let (http, target, docs, args) =
                (http.clone(), target.clone(), docs.clone(), args.clone());
            tasks.push(tokio::spawn(async move {
                client(&http, &target, &docs, &args, op, state, start).await
            }));
        }
        let mut total = PhaseResult {
            ok: 0,
            errors: 0,
            first_error: None,
            latency: histogram(),
        };
        for t in tasks {
            let (state, r) = t.await.context("a client task panicked")?;
            clients.push(state);
            total.ok += r.ok;
            total.errors += r.errors;
            total.first_error = total.first_error.or(r.first_error);
            total
                .latency
                .add(&r.latency)
                .context("merging histograms")?;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let name = format!("{op:?}").to_lowercase();
        let rate = total.ok as f64 / elapsed;
        println!(
            "{name}: {} acknowledged, {} failed in {elapsed:.2} s = {rate:.0}/s",
            total.ok, total.errors
        );
        println!("  latency: {}", summary(&total.latency));
        if let Some(e) = &total.first_error {
            println!("  first error: {e}");
        }
        let ms = |q: f64| total.latency.value_at_quantile(q) as f64 / 1000.0;
        summaries.push(format!(
            "summary op={name} rate={rate:.1} p50_ms={:.2} p99_ms={:.2} errors={}",
            ms(0.5),
            ms(0.99),
            total.errors
        ));
        match op {
            Op::Create => creates += total.ok,
            Op::Update => updates += total.ok,
            Op::Get | Op::List => {}
        }
    }
    // Seeded objects count as creates: they were acknowledged like the others.
    let owned: u64 = clients.iter().map(|c| c.owned.len() as u64).sum();
    let seeded = owned - creates;
    let stored = target.scan(&http).await?;
    let stored_updates: u64 = stored.iter().map(updates_of).sum();
    anyhow::ensure!(
        stored.len() as u64 == owned,
        "the server holds {} documents but acknowledged {owned} creates",
        stored.len()
    );
    anyhow::ensure!(
        stored_updates == updates,
        "the stored documents carry {stored_updates} updates but {updates} were acknowledged"
    );
    println!(
        "check: the server holds exactly the {owned} acknowledged creates ({seeded} of them \
         seeded) with exactly the {updates} acknowledged updates"
    );
    for s in summaries {
        println!("{s}");
    }
    Ok(())
}

/// One client's phase: `op` in a loop until the phase's end.
async fn client(
    http: &reqwest::Client,
    target: &Target,
    docs: &Docs,
    args: &ApiBenchArgs,
    op: Op,
    mut state: ClientState,
    start: Instant,
) -> (ClientState, PhaseResult) {
    let mut r = PhaseResult {
        ok: 0,
        errors: 0,
        first_error: None,
        latency: histogram(),
    };
    if matches!(op, Op::Update | Op::Get) && state.owned.is_empty() {
        for _ in 0..SEED_PER_CLIENT {
            let _ = create(http, target, docs, &mut state).await;
        }
    }
    let interval = args
        .rate
        .map(|rate| Duration::from_secs_f64(args.clients as f64 / rate.max(0.001)));
    // Open-loop clients start staggered so the offered load is smooth.
    let mut next = start
        + interval.map_or(Duration::ZERO, |iv| {
            iv.mul_f64(state.id as f64 / args.clients as f64)
        });
    // The run's clock starts after seeding, so every phase lasts its duration.
    let end = Instant::now().max(start) + args.duration;
    loop {
        let scheduled = match interval {
            Some(iv) => {
                if next >= end {
                    break;
                }
                tokio::time::sleep_until(next.into()).await;
                let s = next;
                next += iv;
                s
            }
            None => {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                now
            }
        };
        let outcome = match op {
            Op::Create => create(http, target, docs, &mut state).await,
            Op::Update => update(http, target, docs, &mut state).await,
            Op::Get => {
                let i = state.cursor % state.owned.len().max(1);
                state.cursor += 1;
                match state.owned.get(i) {
                    Some(o) => read(http, target, target.get(&o.name)).await,
                    None => Err("no object to read".into()),
                }
            }
            Op::List => read(http, target, target.list()).await,
        };
        match outcome {
            Ok(()) => r.ok += 1,
            Err(e) => {
                r.errors += 1;
                r.first_error.get_or_insert(e);
            }
        }
        let _ = r
            .latency
            .record(scheduled.elapsed().as_micros().max(1) as u64);
    }
    (state, r)
}

async fn send(http: &reqwest::Client, req: Request) -> Result<(u16, bytes::Bytes), String> {
    let mut builder = http
        .request(req.method, &req.url)
        .header("content-type", req.content_type);
    if let Some(body) = req.body {
        builder = builder.body(body);
    }
    let resp = builder.send().await.map_err(|e| e.to_string())?;
    let code = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((code, body))
}

fn failure(code: u16, body: &[u8]) -> String {
    format!("{code}: {}", String::from_utf8_lossy(body))
}

async fn create(
    http: &reqwest::Client,
    target: &Target,
    docs: &Docs,
    state: &mut ClientState,
) -> Result<(), String> {
    let name = format!("j-{}-{}", state.id, state.next_seq);
    state.next_seq += 1;
    let (code, body) = send(http, target.create(&name, docs.create(&name))).await?;
    if code != target.created_code() {
        return Err(failure(code, &body));
    }
    state.owned.push(Owned {
        name,
        resource_version: resource_version(&body).unwrap_or_default(),
        updates: 0,
    });
    Ok(())
}

async fn update(
    http: &reqwest::Client,
    target: &Target,
    docs: &Docs,
    state: &mut ClientState,
) -> Result<(), String> {
    let i = state.cursor % state.owned.len().max(1);
    state.cursor += 1;
    let Some(o) = state.owned.get_mut(i) else {
        return Err("no object to update".into());
    };
    let (mut code, mut body) = send(http, target.update(&o.name, docs.update(o))).await?;
    if code == 409 {
        // Someone else wrote the object (the job controller writes a Job's status): read it
        // again and retry once, as a controller would; the latency covers both.
        let (got, current) = send(http, target.get(&o.name)).await?;
        if got != 200 {
            return Err(failure(got, &current));
        }
        o.resource_version = resource_version(&current).unwrap_or_default();
        (code, body) = send(http, target.update(&o.name, docs.update(o))).await?;
    }
    if code != 200 {
        return Err(failure(code, &body));
    }
    o.updates += 1;
    if let Some(rv) = resource_version(&body) {
        o.resource_version = rv;
    }
    Ok(())
}

async fn read(http: &reqwest::Client, target: &Target, req: Request) -> Result<(), String> {
    let (code, body) = send(http, req).await?;
    if code != 200 || !target.found(&body) {
        return Err(failure(code, &body));
    }
    Ok(())
}
