//! The JobVersions the state keeps with their Job: stored by the put of the Job that carries
//! one, trimmed in the same apply to the job's newest `keep` versions plus its newest stable
//! one, and deleted with the Job. Deterministic: the version, its uid and timestamp, and
//! `keep` all come from the log entry.

use std::ops::Bound;
use std::sync::Arc;

use caravan_schemas::Kind;
use serde::Deserialize;

use super::State;
use crate::store::object::{StoredObject, VersionPut};
use crate::store::watch_cache::{Change, EventType};

impl State {
    /// Stores the JobVersion a successful Job put carried (over a version of the same name,
    /// if one is left), then trims the job's versions.
    pub(super) fn put_version(
        &mut self,
        index: u64,
        version: &VersionPut,
        events: &mut Vec<Arc<Change>>,
    ) {
        let object = Arc::new(StoredObject::from_put(
            Kind::JobVersion,
            &version.object,
            index,
        ));
        let namespace = object.key.namespace.clone();
        let job = object.field("spec.jobName").map(str::to_owned);
        let previous = self.insert(object.clone());
        events.push(Arc::new(Change {
            event_type: if previous.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            },
            object,
            previous,
        }));
        if let Some(job) = job {
            self.trim_versions(index, &namespace, &job, version.keep, events);
        }
    }

    /// Deletes every version of the job `namespace`/`job` (the job was deleted).
    pub(super) fn delete_versions(
        &mut self,
        index: u64,
        namespace: &str,
        job: &str,
        events: &mut Vec<Arc<Change>>,
    ) {
        for (_, version) in self.versions_of(namespace, job) {
            self.remove_version(&version, index, events);
        }
    }

    /// Keeps the newest `keep` versions of the job (at least one) and its newest stable one;
    /// deletes the others.
    fn trim_versions(
        &mut self,
        index: u64,
        namespace: &str,
        job: &str,
        keep: u32,
        events: &mut Vec<Arc<Change>>,
    ) {
        let keep = usize::try_from(keep.max(1)).unwrap_or(usize::MAX);
        let mut versions = self.versions_of(namespace, job);
        if versions.len() <= keep {
            return;
        }
        // Newest first.
        versions.sort_by_key(|(number, _)| std::cmp::Reverse(*number));
        let mut older = versions.split_off(keep);
        if !versions.iter().any(|(_, v)| is_stable(v))
            && let Some(stable) = older.iter().position(|(_, v)| is_stable(v))
        {
            older.remove(stable);
        }
        // Oldest first.
        for (_, version) in older.iter().rev() {
            self.remove_version(version, index, events);
        }
    }

    /// The versions of the job `namespace`/`job` with their numbers, in name order: the
    /// JobVersions named `<job>-v<N>` whose `spec.jobName` is the job.
    pub(crate) fn versions_of(&self, namespace: &str, job: &str) -> Vec<(i64, Arc<StoredObject>)> {
        let Some(objects) = self.objects.get(&Kind::JobVersion) else {
            return Vec::new();
        };
        let prefix = format!("{job}-v");
        let start = (namespace.to_owned(), prefix.clone());
        objects
            .range::<_, (String, String)>((Bound::Included(start), Bound::Unbounded))
            .take_while(|((ns, name), _)| ns == namespace && name.starts_with(&prefix))
            .filter(|(_, version)| version.field("spec.jobName") == Some(job))
            .filter_map(|((_, name), version)| {
                let number = name.get(prefix.len()..)?;
                if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((number.parse().ok()?, version.clone()))
            })
            .collect()
    }

    /// Removes a version, recording its deletion.
    fn remove_version(
        &mut self,
        version: &StoredObject,
        index: u64,
        events: &mut Vec<Arc<Change>>,
    ) {
        if let Some(previous) = self.remove(&version.key) {
            events.push(Arc::new(Change {
                event_type: EventType::Deleted,
                object: Arc::new(previous.restamped(index)),
                previous: Some(previous),
            }));
        }
    }
}

/// Whether a stored JobVersion has `status.stable: true`.
fn is_stable(version: &StoredObject) -> bool {
    #[derive(Deserialize)]
    struct Version {
        #[serde(default)]
        status: Option<Status>,
    }
    #[derive(Deserialize)]
    struct Status {
        #[serde(default)]
        stable: Option<bool>,
    }
    serde_json::from_slice::<Version>(&version.json)
        .ok()
        .and_then(|v| v.status?.stable)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests;
