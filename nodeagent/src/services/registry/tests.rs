use std::time::Duration;

use caravan_schemas::ObjectMeta;

use super::*;
use crate::services::build::{CheckDef, CheckKind};

fn key(name: &str) -> AllocKey {
    AllocKey {
        namespace: "prod".into(),
        name: name.into(),
    }
}

fn wanted(alloc: &str, service: &str, checks: &[(&str, CheckStatus)]) -> Wanted {
    let name = format!("{alloc}-{service}");
    Wanted {
        registration: ServiceRegistration {
            api_version: "caravan.dev/v1".into(),
            kind: "ServiceRegistration".into(),
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some("prod".into()),
                ..Default::default()
            },
            spec: ServiceRegistrationSpec {
                service_name: service.into(),
                alloc_name: alloc.into(),
                node_name: "n1".into(),
                ..Default::default()
            },
            status: None,
        },
        task: Some("web".into()),
        run: Some("t0".into()),
        checks: checks
            .iter()
            .map(|(name, initial)| CheckDef {
                name: name.to_string(),
                kind: CheckKind::Tcp {
                    address: "127.0.0.1".into(),
                    port: 1,
                },
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                initial: *initial,
                success_before_passing: 0,
                failures_before_critical: 0,
                restart: None,
            })
            .collect(),
    }
}

/// A spawn that starts nothing, counting its calls.
fn counting(calls: &mut usize) -> impl FnMut(&str, u64, &Wanted) -> Vec<AbortHandle> + '_ {
    move |_, _, _| {
        *calls += 1;
        Vec::new()
    }
}

fn writes(registry: &mut Registry, now: Instant) -> Vec<(String, &'static str)> {
    let (jobs, _) = registry.plan(now);
    jobs.into_iter()
        .map(|j| {
            let kind = match j.write {
                Write::Create(_) => "create",
                Write::Replace(_) => "replace",
                Write::PatchStatus(_) => "status",
                Write::Delete => "delete",
            };
            (j.name, kind)
        })
        .collect()
}

fn written_as_planned(registry: &mut Registry, now: Instant) {
    let (jobs, _) = registry.plan(now);
    for job in jobs {
        let done = match job.write {
            Write::Create(o) | Write::Replace(o) => Done::Written {
                spec: Box::new(o.spec),
                status: o.status.unwrap_or_default(),
            },
            Write::PatchStatus(status) => Done::StatusWritten(status),
            Write::Delete => Done::Absent,
        };
        registry.finish(&job.name, done, now);
    }
}

#[test]
fn wanted_registrations_are_created_kept_and_deleted() {
    let now = Instant::now();
    let mut r = Registry::default();
    let mut spawned = 0;
    let a = key("a");
    r.open_alloc(a.clone());
    let both = vec![
        wanted("a", "web", &[("c", CheckStatus::Critical)]),
        wanted("a", "api", &[]),
    ];
    r.sync_alloc(
        &a,
        both.clone(),
        SystemTime::now(),
        &mut counting(&mut spawned),
    );
    assert_eq!(spawned, 2);
    assert_eq!(
        writes(&mut r, now),
        [
            ("a-api".to_string(), "create"),
            ("a-web".to_string(), "create")
        ]
    );
    written_as_planned(&mut r, now);
    assert_eq!(writes(&mut r, now), []);
    assert_eq!(r.backlog(), 0);
    // The same again: nothing restarts.
    r.sync_alloc(&a, both, SystemTime::now(), &mut counting(&mut spawned));
    assert_eq!(spawned, 2);
    // The task stopped: its registrations go.
    r.sync_alloc(
        &a,
        Vec::new(),
        SystemTime::now(),
        &mut counting(&mut spawned),
    );
    assert_eq!(r.alloc_checks(&a), []);
    assert_eq!(r.backlog(), 2);
    written_as_planned(&mut r, now);
    assert_eq!(writes(&mut r, now), []);
    assert!(r.entries.is_empty(), "forgotten once deleted");
}

#[test]
fn check_results_of_an_older_generation_are_dropped() {
    let mut r = Registry::default();
    let a = key("a");
    let mut gens = Vec::new();
    let mut spawn = |_: &str, g: u64, _: &Wanted| {
        gens.push(g);
        Vec::new()
    };
    let first = wanted("a", "web", &[("c", CheckStatus::Critical)]);
    r.sync_alloc(&a, vec![first.clone()], SystemTime::now(), &mut spawn);
    let mut second = first;
    second.run = Some("t1".into());
    r.sync_alloc(&a, vec![second], SystemTime::now(), &mut spawn);
    assert_eq!(gens.len(), 2, "a new run starts its checks again");
    let at = SystemTime::now();
    let record = |r: &mut Registry, g: u64, status, output: &str| {
        r.record("a-web", g, 0, status, output.into(), at)
    };
    assert_eq!(
        record(&mut r, gens[0], CheckStatus::Passing, "old"),
        Recorded::default()
    );
    assert_eq!(
        record(&mut r, gens[1], CheckStatus::Passing, "ok"),
        Recorded {
            status: true,
            output: true
        }
    );
    assert_eq!(
        record(&mut r, gens[1], CheckStatus::Passing, "ok"),
        Recorded::default()
    );
    assert_eq!(
        r.alloc_checks(&a),
        [CheckHealth {
            task: Some("web".into()),
            name: "c".into(),
            passing_since: Some(at)
        }]
    );
    assert!(record(&mut r, gens[1], CheckStatus::Warning, "slow").status);
    assert_eq!(r.alloc_checks(&a)[0].passing_since, None);
}

#[test]
fn reconcile_adopts_deletes_orphans_and_holds_unsynced_allocations() {
    let now = Instant::now();
    let mut r = Registry::default();
    let mut n = 0;
    let stored = |alloc: &str, service: &str| {
        let mut reg = wanted(alloc, service, &[]).registration;
        reg.status = Some(ServiceRegistrationStatus {
            status: CheckStatus::Passing,
            checks: Vec::new(),
        });
        reg
    };
    // `a` runs and wants `web`; `b` was restored and has not reported yet; `c` is gone.
    r.open_alloc(key("a"));
    r.open_alloc(key("b"));
    r.sync_alloc(
        &key("a"),
        vec![wanted("a", "web", &[]), wanted("a", "new", &[])],
        SystemTime::now(),
        &mut counting(&mut n),
    );
    r.reconcile(
        vec![
            stored("a", "web"),
            stored("a", "old"),
            stored("b", "web"),
            stored("c", "web"),
        ],
        now,
    );
    let mut planned = writes(&mut r, now);
    planned.sort();
    assert_eq!(
        planned,
        [
            ("a-new".to_string(), "create"),
            ("a-old".to_string(), "delete"),
            ("c-web".to_string(), "delete"),
        ],
        "a-web adopted as it is, b-web held"
    );
    written_as_planned(&mut r, now);
    // `b`'s runner reports: it still wants its service, so nothing is written.
    r.sync_alloc(
        &key("b"),
        vec![wanted("b", "web", &[])],
        SystemTime::now(),
        &mut counting(&mut n),
    );
    assert_eq!(writes(&mut r, now), []);
    // A registration deleted behind the agent's back is created again at the next reconcile.
    r.reconcile(vec![stored("b", "web")], now);
    assert_eq!(
        writes(&mut r, now),
        [
            ("a-new".to_string(), "create"),
            ("a-web".to_string(), "create")
        ]
    );
    // Closing an allocation deletes what it registered.
    written_as_planned(&mut r, now);
    r.close_alloc(&key("b"));
    assert_eq!(writes(&mut r, now), [("b-web".to_string(), "delete")]);
}

#[test]
fn failed_writes_back_off() {
    let now = Instant::now();
    let mut r = Registry::default();
    let mut n = 0;
    r.sync_alloc(
        &key("a"),
        vec![wanted("a", "web", &[])],
        SystemTime::now(),
        &mut counting(&mut n),
    );
    let failed = || Done::Failed(ClientError::Unavailable("down".into()));
    r.finish("a-web", failed(), now);
    let (jobs, wake) = r.plan(now);
    assert!(jobs.is_empty());
    assert_eq!(wake, Some(now + FIRST_BACKOFF));
    r.finish("a-web", failed(), now);
    assert_eq!(r.plan(now).1, Some(now + FIRST_BACKOFF * 2));
    for _ in 0..20 {
        r.finish("a-web", failed(), now);
    }
    assert_eq!(r.plan(now).1, Some(now + MAX_BACKOFF));
    assert_eq!(
        writes(&mut r, now + MAX_BACKOFF).len(),
        1,
        "tried again once due"
    );
}
