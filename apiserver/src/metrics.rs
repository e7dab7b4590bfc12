//! Prometheus metrics of the API server, served at `/metrics` (`http/mod.rs`).

mod process;

use std::sync::Mutex;

use caravan_schemas::Kind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::raft::ReplicatedStore;
use process::ProcessCollector;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub resource: String,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub verb: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// Every metric the API server keeps.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<LatencyLabels, Histogram>,
    pub watchers: Gauge,
    objects: Family<KindLabels, Gauge>,
    revision: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        // No registry prefix: the process collector's metrics keep their standard names.
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let watchers = Gauge::default();
        let objects = Family::<KindLabels, Gauge>::default();
        let revision = Gauge::default();
        registry.register(
            "caravan_apiserver_requests",
            "API requests by verb, resource and code",
            requests.clone(),
        );
        registry.register(
            "caravan_apiserver_request_duration_seconds",
            "API request latency (watches: until the stream starts)",
            latency.clone(),
        );
        registry.register(
            "caravan_apiserver_watchers",
            "Open watch streams",
            watchers.clone(),
        );
        registry.register(
            "caravan_store_objects",
            "Objects in the store by kind",
            objects.clone(),
        );
        registry.register(
            "caravan_store_revision",
            "Last applied Raft log index",
            revision.clone(),
        );
        registry.register(
            "caravan_gossip_packets_dropped",
            "Gossip packets dropped: no installed key opens them (decrypt) or not encrypted",
            crate::cluster::sealed::dropped_packets().clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            watchers,
            objects,
            revision,
        }
    }

    /// Records one finished request.
    pub fn observe(&self, verb: &str, resource: &str, code: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                verb: verb.to_string(),
                resource: resource.to_string(),
                code,
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                verb: verb.to_string(),
                resource: resource.to_string(),
            })
            .observe(seconds);
    }

    /// The text exposition, with store gauges read now.
    pub fn render(&self, store: &ReplicatedStore) -> String {
        {
            let state = store.state();
            for k in Kind::ALL {
                self.objects
                    .get_or_create(&KindLabels {
                        kind: k.name().to_string(),
                    })
                    .set(state.count(k) as i64);
            }
            self.revision.set(state.revision() as i64);
        }
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry lock");
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
