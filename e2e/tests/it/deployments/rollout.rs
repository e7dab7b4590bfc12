//! The ordered watch of a rollout ([`Rollout`]): the states a job's allocations went through
//! during an update, checked against what the update promises.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use caravan_e2e::cluster::field;
use caravan_e2e::http::{WatchStream, collection_path};
use serde_json::Value;

use super::{Api, ROLLOUT, healthy, live, running, rv_number, summary, version};

/// Follows the allocations of one job through the ordered watch stream, from a list taken
/// before an update to version `new_version`, and keeps the extremes of what the update
/// promises over every committed state (events sharing a resourceVersion were applied
/// together in one Raft entry, so a state is checked only once the whole entry is in):
///
/// - new-version allocations placed as replacements and not yet healthy
///   (`status.deploymentStatus.healthy != true`) while wanted and not finished: at most
///   `maxParallel`;
/// - allocations serving (running and wanted: old-version ones, ones updated in place to the
///   new version while their health is judged again, and new ones once healthy): at least
///   `count − maxParallel`;
/// - new-version allocations wanted and not finished, and old-version ones running: for
///   canaries before promotion.
pub(crate) struct Rollout {
    job: String,
    new_version: i64,
    watch: WatchStream,
    allocs: BTreeMap<String, Value>,
    /// The resourceVersion of the entry whose events are being applied.
    entry: Option<String>,
    pub(crate) max_new_unhealthy: usize,
    pub(crate) min_serving: usize,
    /// Allocations updated in place to a newer version (seen at an older one before): not
    /// replacements, they keep serving while their health is judged again.
    in_place: std::collections::BTreeSet<String>,
    pub(crate) max_new_live: usize,
    pub(crate) min_old_running: usize,
    /// The states at which the extremes were reached, for failure messages.
    at_max_new_unhealthy: String,
    at_min_serving: String,
    states: usize,
}

impl Rollout {
    /// Lists the allocations of `job` and opens the watch from that list.
    pub(crate) async fn open(api: &Api<'_>, job: &str, new_version: i64) -> Rollout {
        let (items, rv) = api
            .list_of_job("allocations", job)
            .await
            .expect("the allocation list answered");
        let url = api.server.url(&format!(
            "{}?watch=1&fieldSelector=spec.jobName={job}&resourceVersion={rv}",
            collection_path("default", "allocations")
        ));
        let watch = WatchStream::open(api.http, &url)
            .await
            .unwrap_or_else(|e| panic!("{e:#}"));
        let mut rollout = Rollout {
            job: job.to_owned(),
            new_version,
            watch,
            allocs: items
                .into_iter()
                .map(|a| (field(&a, "/metadata/name").to_owned(), a))
                .collect(),
            entry: None,
            max_new_unhealthy: 0,
            min_serving: usize::MAX,
            in_place: Default::default(),
            max_new_live: 0,
            min_old_running: usize::MAX,
            at_max_new_unhealthy: String::new(),
            at_min_serving: String::new(),
            states: 0,
        };
        rollout.check();
        rollout
    }

    /// Forgets the extremes seen so far: the next ones start from the current state, which
    /// must be complete (right after [`Rollout::catch_up`]).
    pub(crate) fn reset(&mut self) {
        self.max_new_unhealthy = 0;
        self.min_serving = usize::MAX;
        self.max_new_live = 0;
        self.min_old_running = usize::MAX;
        self.check();
    }

    /// The current allocations.
    pub(crate) fn allocs(&self) -> Vec<&Value> {
        self.allocs.values().collect()
    }

    fn check(&mut self) {
        self.states += 1;
        let in_place = |a: &&Value| self.in_place.contains(field(a, "/metadata/name"));
        let new = |a: &&Value| version(a) == self.new_version;
        let old = |a: &&Value| version(a) < self.new_version;
        let all = || self.allocs.values();
        let new_unhealthy = all()
            .filter(new)
            .filter(|a| !in_place(a))
            .filter(|a| live(a) && healthy(a) != Some(true))
            .count();
        let serving = all()
            .filter(|a| running(a) && (old(a) || in_place(a) || healthy(a) == Some(true)))
            .count();
        let new_live = all().filter(new).filter(|a| live(a)).count();
        let old_running = all().filter(old).filter(|a| running(a)).count();
        if new_unhealthy > self.max_new_unhealthy {
            self.max_new_unhealthy = new_unhealthy;
            self.at_max_new_unhealthy = summary(self.allocs.values());
        }
        if serving < self.min_serving {
            self.min_serving = serving;
            self.at_min_serving = summary(self.allocs.values());
        }
        self.max_new_live = self.max_new_live.max(new_live);
        self.min_old_running = self.min_old_running.min(old_running);
    }

    fn apply(&mut self, event: &Value) {
        let kind = event["type"].as_str().unwrap_or_default();
        let object = &event["object"];
        match kind {
            "ADDED" | "MODIFIED" | "DELETED" => {}
            "ERROR" => panic!("the allocation watch of {} failed: {event}", self.job),
            _ => return,
        }
        let rv = field(object, "/metadata/resourceVersion").to_owned();
        if self.entry.as_ref() != Some(&rv) {
            // The previous entry is complete: check the state it left.
            self.check();
            self.entry = Some(rv);
        }
        let name = field(object, "/metadata/name").to_owned();
        if let Some(before) = self.allocs.get(&name)
            && version(before) < version(object)
        {
            self.in_place.insert(name.clone());
        }
        if kind == "DELETED" {
            self.allocs.remove(&name);
        } else {
            self.allocs.insert(name, object.clone());
        }
    }

    /// Applies watch events until `cond` holds for the allocations. The state it holds for
    /// may be part of an entry: it is checked once the entry is known complete.
    pub(crate) async fn follow_until(&mut self, what: &str, cond: impl Fn(&[&Value]) -> bool) {
        let deadline = Instant::now() + ROLLOUT;
        loop {
            if cond(&self.allocs()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {ROLLOUT:?} waiting until {what}; allocations of {} as \
                 watched:\n{}",
                self.job,
                summary(self.allocs.values())
            );
            match self.watch.next_event(Duration::from_millis(250)).await {
                Ok(Some(event)) => self.apply(&event),
                Ok(None) => panic!("the allocation watch of {} ended", self.job),
                Err(e) if e.to_string().contains("no watch event within") => {}
                Err(e) => panic!("the allocation watch of {} broke: {e:#}", self.job),
            }
        }
    }

    /// Applies watch events until every allocation the server lists now is seen at its listed
    /// resourceVersion or later, and checks that state: every entry seen is then complete (a
    /// list reflects whole entries), and the extremes cover every state up to now.
    pub(crate) async fn catch_up(&mut self, api: &Api<'_>) {
        let (items, _) = api
            .list_of_job("allocations", &self.job)
            .await
            .expect("the allocation list answered");
        let listed: BTreeMap<String, u64> = items
            .iter()
            .map(|a| (field(a, "/metadata/name").to_owned(), rv_number(a)))
            .collect();
        self.follow_until("the watch has caught up with a list", |allocs| {
            listed.iter().all(|(name, rv)| {
                allocs
                    .iter()
                    .any(|a| field(a, "/metadata/name") == name && rv_number(a) >= *rv)
            })
        })
        .await;
        self.check();
    }

    /// Panics unless, over every state since the last reset, at most `max_parallel`
    /// new-version allocations were not yet healthy and at least `min_serving` served.
    #[track_caller]
    pub(crate) fn assert_paced(&self, max_parallel: usize, min_serving: usize) {
        assert!(
            self.max_new_unhealthy <= max_parallel,
            "{} new-version allocations were not yet healthy at once (maxParallel \
             {max_parallel}), over {} states; then:\n{}",
            self.max_new_unhealthy,
            self.states,
            self.at_max_new_unhealthy
        );
        assert!(
            self.min_serving >= min_serving,
            "only {} allocations were serving at one point (at least {min_serving} should), \
             over {} states; then:\n{}",
            self.min_serving,
            self.states,
            self.at_min_serving
        );
    }
}
