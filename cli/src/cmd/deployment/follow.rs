//! Drives the deployment [`Monitor`]: watches one Deployment (list, then watch, re-listing on
//! expiry) until it is no longer active, printing the monitor's lines, with a spinner while
//! nothing changes. A deployment that does not appear within the given wait is taken as none.

use std::time::Duration;

use anyhow::bail;
use caravan_client::HttpClient;
use caravan_runtime::{ClientError, Event, ListQuery, watcher};
use caravan_schemas::{Deployment, Kind};
use futures::StreamExt;

use super::monitor::{Monitor, Outcome};
use crate::cmd::job::monitor::Line;
use crate::cmd::job::progress::Progress;

/// Follows deployment `name` in `namespace` to its end. `Ok(None)` when it did not appear
/// within `appear_within` (the job's version got no deployment).
pub async fn follow(
    client: &HttpClient,
    namespace: &str,
    name: &str,
    appear_within: Duration,
) -> anyhow::Result<Option<Outcome>> {
    let query = ListQuery {
        field_selector: Some(format!("metadata.name={name}")),
        ..ListQuery::default()
    };
    let events = watcher(
        client.clone(),
        Kind::Deployment,
        Some(namespace.to_owned()),
        query,
    );
    tokio::pin!(events);
    let mut monitor = Monitor::new(name);
    let mut progress = Progress::new();
    let appear = tokio::time::sleep(appear_within);
    tokio::pin!(appear);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let waiting = format!("Waiting for deployment {name:?} to finish");
    loop {
        tokio::select! {
            event = events.next() => {
                let deployment = match event {
                    None => bail!("the watch of deployment {name:?} ended"),
                    Some(Ok(Event::InitApply(v) | Event::Apply(v))) => {
                        match serde_json::from_value::<Deployment>(v) {
                            Ok(d) => d,
                            Err(e) => {
                                tracing::warn!("skipping an undecodable Deployment: {e}");
                                continue;
                            }
                        }
                    }
                    Some(Ok(Event::Delete(_))) => {
                        progress.clear();
                        bail!("deployment {name:?} was deleted before it finished");
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e @ ClientError::Unavailable(_))) => {
                        progress.clear();
                        return Err(anyhow::Error::new(e)
                            .context(format!("watching deployment {name:?}")));
                    }
                    Some(Err(e)) => {
                        tracing::warn!("{e:#}; retrying");
                        continue;
                    }
                };
                let first = !monitor.seen();
                let mut lines = monitor.observe(&deployment);
                if first && !lines.is_empty() {
                    // A blank line after the evaluation's monitor, as Nomad prints.
                    lines.insert(0, Line::Detail(String::new()));
                }
                progress.print(lines);
                if let Some(end) = monitor.outcome() {
                    progress.clear();
                    return Ok(Some(end));
                }
            }
            _ = &mut appear, if !monitor.seen() => {
                progress.clear();
                return Ok(None);
            }
            _ = tick.tick(), if monitor.seen() => progress.tick(&waiting),
        }
    }
}
