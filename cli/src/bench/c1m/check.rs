//! The count check at the end of a run, on what the server holds: every job has exactly
//! `count` allocations, one per group index, all meant to run and reported running.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use anyhow::Context as _;
use caravan_client::HttpClient;
use caravan_schemas::naming::parse_index;
use futures::StreamExt;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::jobs::{GROUP, NAMESPACE};

/// What the check reads of an allocation (the rest of each object is skipped unparsed).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Row {
    pub metadata: RowMeta,
    pub spec: RowSpec,
    #[serde(default)]
    pub status: Option<RowStatus>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct RowMeta {
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RowSpec {
    pub job_name: String,
    pub group: String,
    pub node_name: String,
    #[serde(default)]
    pub desired_status: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RowStatus {
    pub client_status: String,
}

#[derive(Deserialize)]
struct Page {
    metadata: PageMeta,
    items: Vec<Row>,
}

#[derive(Deserialize)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

/// The outcome of the check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub expected: u64,
    pub total: u64,
    pub running: u64,
    /// Allocations not meant to run (`desiredStatus` other than `run`).
    pub stopped: u64,
    /// Group indexes held by more than one allocation.
    pub duplicates: u64,
    /// Group indexes without an allocation.
    pub missing: u64,
    /// Allocations of another group, or whose name carries no index below `count`.
    pub unexpected: u64,
    /// Allocations per node: nodes used, fewest, most.
    pub nodes_used: u64,
    pub min_per_node: u64,
    pub max_per_node: u64,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.total == self.expected
            && self.running == self.expected
            && self.stopped == 0
            && self.duplicates == 0
            && self.missing == 0
            && self.unexpected == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} — {} allocations of {} expected, {} running, {} not meant to run, {} duplicate \
             indexes, {} missing indexes, {} unexpected; {} nodes used, {}–{} allocations per \
             node",
            if self.passed() { "passed" } else { "FAILED" },
            self.total,
            self.expected,
            self.running,
            self.stopped,
            self.duplicates,
            self.missing,
            self.unexpected,
            self.nodes_used,
            self.min_per_node,
            self.max_per_node,
        )
    }
}

/// Checks `rows` (allocations of `jobs`) against `count` allocations per job.
pub fn check(jobs: &[String], count: u32, rows: &[Row]) -> Report {
    let mut report = Report {
        expected: jobs.len() as u64 * u64::from(count),
        total: rows.len() as u64,
        ..Report::default()
    };
    let mut seen: HashMap<&str, Vec<u32>> = jobs
        .iter()
        .map(|j| (j.as_str(), vec![0; count as usize]))
        .collect();
    let mut per_node: BTreeMap<&str, u64> = BTreeMap::new();
    for row in rows {
        *per_node.entry(row.spec.node_name.as_str()).or_default() += 1;
        if row
            .spec
            .desired_status
            .as_deref()
            .is_some_and(|d| d != "run")
        {
            report.stopped += 1;
        }
        if row
            .status
            .as_ref()
            .is_some_and(|s| s.client_status == "running")
        {
            report.running += 1;
        }
        let slot = seen
            .get_mut(row.spec.job_name.as_str())
            .filter(|_| row.spec.group == GROUP)
            .zip(parse_index(&row.metadata.name))
            .and_then(|(indexes, i)| indexes.get_mut(i as usize));
        match slot {
            Some(n) => *n += 1,
            None => report.unexpected += 1,
        }
    }
    for n in seen.values().flatten() {
        match n {
            0 => report.missing += 1,
            1 => {}
            _ => report.duplicates += 1,
        }
    }
    report.nodes_used = per_node.len() as u64;
    report.min_per_node = per_node.values().copied().min().unwrap_or(0);
    report.max_per_node = per_node.values().copied().max().unwrap_or(0);
    report
}

/// Every allocation of `job`, page by page.
async fn job_rows(client: &HttpClient, job: &str) -> anyhow::Result<Vec<Row>> {
    let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    let base = format!(
        "/apis/caravan.dev/v1/namespaces/{NAMESPACE}/allocations?limit=1000&fieldSelector={}",
        encode(&format!("spec.jobName={job}"))
    );
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(t) => format!("{base}&continue={}", encode(t)),
            None => base.clone(),
        };
        let page: Page = client
            .get_path(&path)
            .await
            .with_context(|| format!("listing the allocations of job {job}"))?;
        rows.extend(page.items);
        match page.metadata.continue_token.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(rows),
        }
    }
}

/// Reads the allocations of every job from the server, a few jobs at a time.
pub async fn fetch(client: &HttpClient, jobs: &[String]) -> anyhow::Result<Vec<Row>> {
    let pages: Vec<anyhow::Result<Vec<Row>>> = futures::stream::iter(jobs)
        .map(|job| job_rows(client, job))
        .buffer_unordered(4)
        .collect()
        .await;
    let mut rows = Vec::new();
    for page in pages {
        rows.extend(page?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(job: &str, index: u32, node: &str, status: &str) -> Row {
        Row {
            metadata: RowMeta {
                name: format!("{job}-g-{index}-0123abcd"),
            },
            spec: RowSpec {
                job_name: job.into(),
                group: GROUP.into(),
                node_name: node.into(),
                desired_status: Some("run".into()),
            },
            status: Some(RowStatus {
                client_status: status.into(),
            }),
        }
    }

    fn jobs() -> Vec<String> {
        vec!["c1m-x-0".into(), "c1m-x-1".into()]
    }

    #[test]
    fn exactly_one_running_allocation_per_index_passes() {
        let rows: Vec<Row> = (0..2)
            .flat_map(|j| {
                (0..3).map(move |i| row(&format!("c1m-x-{j}"), i, &format!("n{i}"), "running"))
            })
            .collect();
        let report = check(&jobs(), 3, &rows);
        assert!(report.passed(), "{report}");
        assert_eq!(
            (report.total, report.nodes_used, report.max_per_node),
            (6, 3, 2)
        );
        assert!(
            report
                .to_string()
                .starts_with("passed — 6 allocations of 6 expected")
        );
    }

    #[test]
    fn duplicates_gaps_strays_and_pending_fail() {
        let mut rows = vec![
            row("c1m-x-0", 0, "n1", "running"),
            row("c1m-x-0", 0, "n2", "running"),
            row("c1m-x-0", 1, "n1", "pending"),
            row("c1m-x-1", 0, "n1", "running"),
            row("c1m-x-1", 7, "n1", "running"),
            row("other", 0, "n1", "running"),
        ];
        rows[2].spec.desired_status = Some("stop".into());
        rows[3].status = None;
        let report = check(&jobs(), 2, &rows);
        assert!(!report.passed());
        assert_eq!(
            (
                report.duplicates,
                report.missing,
                report.unexpected,
                report.stopped,
                report.running
            ),
            (1, 1, 2, 1, 4)
        );
        assert!(report.to_string().starts_with("FAILED"));
    }

    #[test]
    fn rows_skip_what_the_check_does_not_read() {
        let text = r#"{"metadata":{"continue":"abc"},"items":[{"apiVersion":"caravan.dev/v1",
            "metadata":{"name":"j-g-0-0123abcd","uid":"u"},"spec":{"jobName":"j","group":"g",
            "nodeName":"n","allocatedResources":{"tasks":{}}},"status":{"clientStatus":"running",
            "taskStates":{"t":{"state":"running","events":[]}}}}]}"#;
        let page: Page = serde_json::from_str(text).unwrap();
        assert_eq!(page.metadata.continue_token.as_deref(), Some("abc"));
        assert_eq!(
            page.items[0].status.as_ref().unwrap().client_status,
            "running"
        );
        assert_eq!(page.items[0].spec.desired_status, None);
    }
}
