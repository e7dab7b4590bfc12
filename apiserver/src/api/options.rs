//! The options of each service call, typed: what Kubernetes' query parameters and
//! `DeleteOptions` say once parsed (`http::query` parses them; the in-process client builds
//! them directly).

use std::sync::Arc;
use std::time::Duration;

use super::error::Error;
use super::scope::Guard;
use super::selector::Selectors;

/// How unknown fields are treated on writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields are errors (Caravan's default, as `kubectl` asks).
    #[default]
    Strict,
    /// Unknown fields are dropped with a warning.
    Warn,
    /// Unknown fields are dropped silently.
    Ignore,
}

/// Options of a create, replace or patch.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Admit and answer, store nothing (`dryRun=All`).
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    /// What the writer may touch (a node's own objects); anything when `None`.
    pub guard: Option<Arc<Guard>>,
}

impl WriteOptions {
    /// Whether unknown fields (and, in bodies, duplicate keys) are errors.
    pub fn strict(&self) -> bool {
        self.field_validation == FieldValidation::Strict
    }
}

/// Options of a delete.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    /// What the writer may delete (a node's own objects); anything when `None`.
    pub guard: Option<Arc<Guard>>,
    pub preconditions: Preconditions,
}

/// What the object must still be for a delete to go ahead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<u64>,
}

impl Preconditions {
    /// A precondition `resourceVersion` as a client sends it: none for `""`.
    pub fn parse_resource_version(text: Option<&str>) -> Result<Option<u64>, Error> {
        match text {
            None | Some("") => Ok(None),
            Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
                Error::BadRequest(format!("invalid precondition resourceVersion {s:?}"))
            }),
        }
    }
}

/// Options of a get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// The revision the answer must be at least as new as (`None`: any, as `0` says).
    pub resource_version: Option<u64>,
}

/// Options of a list.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub selectors: Selectors,
    /// At most this many objects a page.
    pub limit: Option<usize>,
    /// Where the page starts: the token the previous page ended with.
    pub continue_token: Option<String>,
    pub resource_version: Option<u64>,
}

/// Options of a watch.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    pub selectors: Selectors,
    /// Events after this revision; `None` starts with the current state (every object ADDED).
    pub resource_version: Option<u64>,
    /// Start with the current state even from a revision, and end it with the
    /// `k8s.io/initial-events-end` BOOKMARK.
    pub send_initial_events: bool,
    /// A BOOKMARK every bookmark interval.
    pub allow_bookmarks: bool,
    /// Caravan's `progressNotify`: a BOOKMARK after every commit that changed nothing the
    /// watch sees, so a cache built from several watches knows how far each one is complete.
    pub progress_notify: bool,
    /// How long the watch runs, at most the server's longest watch.
    pub timeout: Option<Duration>,
}
