//! A list-then-watch stream that survives expired versions and dropped connections, for
//! callers that keep a cache of a kind (the kube-runtime `watcher` shape).
//!
//! ```text
//!  Empty ──list page──▶ InitPage ──last page──▶ InitListed ──watch──▶ Watching
//!    ▲                                              ▲                    │
//!    │                                              └── stream ended, ───┤
//!    │                                                  transport error  │
//!    └──────────────────── 410 Expired ──────────────────────────────────┘
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use caravan_schemas::Status;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;

use crate::api::{Api, ObjectList};
use crate::error::Error;
use crate::params::{ListParams, WatchParams};
use crate::watch::WatchEvent;

/// What a cache built from the watcher does with each event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A (re-)list starts: start building a fresh cache.
    Init,
    /// An object present at list time.
    InitApply(Value),
    /// The list is complete: replace the cache with the one built since `Init`.
    InitDone,
    /// An object was added or modified.
    Apply(Value),
    /// An object was deleted; the value is its last state.
    Delete(Value),
}

/// Why a step failed. The stream goes on after every error, backing off while they repeat.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    #[error("initial list failed")]
    InitialListFailed(#[source] Error),
    #[error("failed to start watch")]
    WatchStartFailed(#[source] Error),
    #[error("watch stream failed")]
    WatchFailed(#[source] Error),
    #[error("watch error from server: {} ({})", .0.message, .0.code)]
    WatchError(Box<Status>),
}

/// What to watch and how.
#[derive(Clone, Debug)]
pub struct Config {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    /// Objects per list page.
    pub page_size: Option<u32>,
    /// How long each watch request lasts before it is renewed.
    pub timeout_seconds: Option<u32>,
    /// Ask for BOOKMARK events so a resumed watch starts from a recent version.
    pub bookmarks: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            label_selector: None,
            field_selector: None,
            page_size: Some(500),
            timeout_seconds: Some(290),
            bookmarks: true,
        }
    }
}

impl Config {
    /// Only objects whose fields match, e.g. `spec.nodeName=n1`.
    pub fn fields(mut self, selector: &str) -> Config {
        self.field_selector = Some(selector.to_owned());
        self
    }

    /// Only objects whose labels match, e.g. `app=web`.
    pub fn labels(mut self, selector: &str) -> Config {
        self.label_selector = Some(selector.to_owned());
        self
    }

    fn list_params(&self, continue_token: Option<String>) -> ListParams {
        ListParams {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            limit: self.page_size,
            continue_token,
        }
    }

    fn watch_params(&self) -> WatchParams {
        WatchParams {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            allow_bookmarks: self.bookmarks,
            timeout_seconds: self.timeout_seconds,
        }
    }
}

enum State {
    Empty,
    InitPage {
        continue_token: String,
        resource_version: String,
    },
    InitListed {
        resource_version: String,
    },
    Watching {
        resource_version: String,
        stream: BoxStream<'static, crate::Result<WatchEvent>>,
        received: bool,
    },
}

struct Machine {
    api: Api,
    config: Config,
    state: State,
    pending: VecDeque<Event>,
    /// Consecutive failed steps; drives the backoff before the next one.
    failures: u32,
}

/// Lists `api`'s objects, then watches from the list's resource version, forever: an expired
/// version (410) re-lists, a dropped or ended watch resumes from the last version seen.
/// Errors are yielded and the stream continues after a backoff; the caller may stop on them.
pub fn watcher(api: Api, config: Config) -> BoxStream<'static, Result<Event, WatcherError>> {
    let machine = Machine {
        api,
        config,
        state: State::Empty,
        pending: VecDeque::new(),
        failures: 0,
    };
    stream::unfold(machine, |mut m| async move {
        loop {
            if let Some(event) = m.pending.pop_front() {
                return Some((Ok(event), m));
            }
            if m.failures > 0 {
                tokio::time::sleep(backoff(m.failures)).await;
            }
            if let Err(e) = m.step().await {
                m.failures = m.failures.saturating_add(1);
                return Some((Err(e), m));
            }
        }
    })
    .boxed()
}

/// 0.5 s doubling up to 30 s.
fn backoff(failures: u32) -> Duration {
    let ms = 500u64.saturating_mul(1 << failures.saturating_sub(1).min(6));
    Duration::from_millis(ms.min(30_000))
}

impl Machine {
    /// Advances the state machine once, queueing any events it produced.
    async fn step(&mut self) -> Result<(), WatcherError> {
        match std::mem::replace(&mut self.state, State::Empty) {
            State::Empty => {
                let page = self
                    .api
                    .list(&self.config.list_params(None))
                    .await
                    .map_err(WatcherError::InitialListFailed)?;
                self.pending.push_back(Event::Init);
                let rv = page.metadata.resource_version.clone();
                self.take_page(page, rv);
                self.failures = 0;
            }
            State::InitPage {
                continue_token,
                resource_version,
            } => {
                let params = self.config.list_params(Some(continue_token.clone()));
                match self.api.list(&params).await {
                    Ok(page) => self.take_page(page, resource_version),
                    // The continue token expired: start the list over.
                    Err(e) if e.is_expired() => return Err(WatcherError::InitialListFailed(e)),
                    Err(e) => {
                        self.state = State::InitPage {
                            continue_token,
                            resource_version,
                        };
                        return Err(WatcherError::InitialListFailed(e));
                    }
                }
            }
            State::InitListed { resource_version } => {
                match self
                    .api
                    .watch(&self.config.watch_params(), &resource_version)
                    .await
                {
                    Ok(stream) => {
                        self.state = State::Watching {
                            resource_version,
                            stream,
                            received: false,
                        }
                    }
                    Err(e) if e.is_expired() => return Err(WatcherError::WatchStartFailed(e)),
                    Err(e) => {
                        self.state = State::InitListed { resource_version };
                        return Err(WatcherError::WatchStartFailed(e));
                    }
                }
            }
            State::Watching {
                mut resource_version,
                mut stream,
                received,
            } => {
                let next = stream.next().await;
                if let Some(Ok(event)) = &next
                    && let Some(rv) = event.resource_version()
                {
                    resource_version = rv.to_owned();
                }
                match next {
                    Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))) => {
                        self.pending.push_back(Event::Apply(o))
                    }
                    Some(Ok(WatchEvent::Deleted(o))) => self.pending.push_back(Event::Delete(o)),
                    Some(Ok(WatchEvent::Bookmark(_))) => {}
                    Some(Ok(WatchEvent::Error(status))) if status.code == 410 => {
                        tracing::debug!(kind = %self.api.kind(), "watch expired, re-listing");
                        return Ok(());
                    }
                    Some(Ok(WatchEvent::Error(status))) => {
                        self.state = State::InitListed { resource_version };
                        return Err(WatcherError::WatchError(status));
                    }
                    Some(Err(e @ Error::Decode(_))) => {
                        self.state = State::Watching {
                            resource_version,
                            stream,
                            received,
                        };
                        return Err(WatcherError::WatchFailed(e));
                    }
                    Some(Err(e)) => {
                        self.state = State::InitListed { resource_version };
                        return Err(WatcherError::WatchFailed(e));
                    }
                    None => {
                        // A watch that ends at once, again and again, must not spin.
                        if !received {
                            self.failures = self.failures.saturating_add(1);
                        }
                        self.state = State::InitListed { resource_version };
                        return Ok(());
                    }
                }
                self.failures = 0;
                self.state = State::Watching {
                    resource_version,
                    stream,
                    received: true,
                };
            }
        }
        Ok(())
    }

    /// Queues a list page's objects and moves on to the next page or to watching.
    fn take_page(&mut self, page: ObjectList, resource_version: String) {
        self.pending
            .extend(page.items.into_iter().map(Event::InitApply));
        match page.metadata.r#continue.filter(|c| !c.is_empty()) {
            Some(continue_token) => {
                self.state = State::InitPage {
                    continue_token,
                    resource_version,
                }
            }
            None => {
                self.pending.push_back(Event::InitDone);
                self.state = State::InitListed { resource_version };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
        assert_eq!(backoff(5), Duration::from_millis(8000));
        assert_eq!(backoff(50), Duration::from_millis(30_000));
    }
}
