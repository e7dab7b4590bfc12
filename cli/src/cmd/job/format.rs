//! Nomad's terminal layouts, shared by `job`, `eval` and `alloc`: `key = value` blocks
//! (`formatKV`), two-space column tables (`formatList`), placement metrics
//! (`formatAllocMetrics`), and times (`2026-01-02T15:04:05Z`, `5m ago`).

use std::time::SystemTime;

use caravan_schemas::AllocMetrics;
use caravan_schemas::allocation::ScorerScores;
use serde_json::Value;

use crate::output::age::age_of;

/// `key = value` lines, the keys padded to the longest (Nomad's `formatKV`).
pub fn kv(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let line = format!("{key:<width$} = {value}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Rows as columns separated by two spaces, each padded to its widest cell; the first row is
/// the header (Nomad's `formatList`). Trailing spaces are trimmed.
pub fn columns(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; count];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths[i] - cell.chars().count();
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The lines explaining why placements failed, each starting with `prefix` (Nomad's
/// `formatAllocMetrics` without scores).
pub fn alloc_metrics(m: &AllocMetrics, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    if m.nodes_evaluated == 0 {
        out.push(format!("{prefix}* No nodes were eligible for evaluation"));
    }
    for (dc, available) in &m.nodes_available {
        if *available == 0 {
            out.push(format!(
                "{prefix}* No nodes are available in datacenter {dc:?}"
            ));
        }
    }
    for (class, n) in &m.class_filtered {
        out.push(format!(
            "{prefix}* Class {class:?}: {n} nodes excluded by filter"
        ));
    }
    for (constraint, n) in &m.constraint_filtered {
        out.push(format!(
            "{prefix}* Constraint {constraint:?}: {n} nodes excluded by filter"
        ));
    }
    if m.nodes_exhausted > 0 {
        out.push(format!(
            "{prefix}* Resources exhausted on {} nodes",
            m.nodes_exhausted
        ));
    }
    for (class, n) in &m.class_exhausted {
        out.push(format!("{prefix}* Class {class:?} exhausted on {n} nodes"));
    }
    for (dimension, n) in &m.dimension_exhausted {
        out.push(format!(
            "{prefix}* Dimension {dimension:?} exhausted on {n} nodes"
        ));
    }
    for quota in &m.quota_exhausted {
        out.push(format!("{prefix}* Quota limit hit {quota:?}"));
    }
    out
}

/// `Task Group "web" (failed to place 3 allocations):`.
pub fn failed_group_header(group: &str, m: &AllocMetrics) -> String {
    let failed = m.coalesced_failures + 1;
    let noun = if failed > 1 {
        "allocations"
    } else {
        "allocation"
    };
    format!("Task Group {group:?} (failed to place {failed} {noun}):")
}

/// The score table of a placement: one row per scored node, a column per scorer and the final
/// score; `None` when nothing was scored.
pub fn score_table(m: &AllocMetrics) -> Option<String> {
    if m.scores.is_empty() {
        return None;
    }
    let scorers: Vec<&str> = ScorerScores::NAMES
        .into_iter()
        .filter(|name| m.scores.iter().any(|s| s.scores.get(name).is_some()))
        .collect();
    let mut header = vec!["Node".to_owned()];
    header.extend(scorers.iter().map(|s| s.to_string()));
    header.push("final score".into());
    let mut rows = vec![header];
    for score in &m.scores {
        let mut row = vec![score.node_name.clone()];
        row.extend(
            scorers
                .iter()
                .map(|s| score.scores.get(s).map_or("0".into(), number)),
        );
        row.push(number(score.norm_score));
        rows.push(row);
    }
    Some(columns(&rows))
}

/// A score with at most three decimals and no trailing zeros.
pub fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// A time as Nomad prints it in monitors: RFC 3339 to the second.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

/// `5m ago` for an RFC 3339 time, `<none>` when absent or unparsable.
pub fn ago(time: Option<&str>, now: SystemTime) -> String {
    time.and_then(|t| age_of(t, now))
        .map_or_else(|| "<none>".into(), |age| format!("{age} ago"))
}

/// A string field of a JSON object by pointer, or `""`.
pub fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// An enum or scalar as it is spelled on the wire (`"job-register"` → `job-register`).
pub fn wire<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The numeric `metadata.resourceVersion` of an object, 0 when absent.
pub fn revision(meta: &caravan_schemas::ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use caravan_schemas::allocation::NodeScore;

    use super::*;

    #[test]
    fn kv_pads_keys_and_columns_pad_cells() {
        let out = kv(&[("ID", "web".into()), ("Priority", "50".into())]);
        assert_eq!(out, "ID       = web\nPriority = 50\n");
        let table = columns(&[
            vec!["Task Group".into(), "Queued".into(), "Running".into()],
            vec!["frontend".into(), "0".into(), "3".into()],
        ]);
        assert_eq!(
            table,
            "Task Group  Queued  Running\nfrontend    0       3\n"
        );
    }

    #[test]
    fn metrics_explain_filters_and_exhaustion_like_nomad() {
        let m = AllocMetrics {
            nodes_evaluated: 3,
            nodes_filtered: 1,
            nodes_available: BTreeMap::from([("dc1".into(), 3), ("dc2".into(), 0)]),
            constraint_filtered: BTreeMap::from([("${attr.kernel.name} = windows".into(), 1)]),
            nodes_exhausted: 2,
            dimension_exhausted: BTreeMap::from([("memory".into(), 2)]),
            coalesced_failures: 2,
            ..AllocMetrics::default()
        };
        assert_eq!(
            alloc_metrics(&m, "  "),
            [
                "  * No nodes are available in datacenter \"dc2\"",
                "  * Constraint \"${attr.kernel.name} = windows\": 1 nodes excluded by filter",
                "  * Resources exhausted on 2 nodes",
                "  * Dimension \"memory\" exhausted on 2 nodes",
            ]
        );
        assert_eq!(
            failed_group_header("web", &m),
            "Task Group \"web\" (failed to place 3 allocations):"
        );
        let none = AllocMetrics::default();
        assert_eq!(
            alloc_metrics(&none, ""),
            ["* No nodes were eligible for evaluation"]
        );
        assert_eq!(
            failed_group_header("web", &none),
            "Task Group \"web\" (failed to place 1 allocation):"
        );
    }

    #[test]
    fn scores_are_tabulated_per_scorer() {
        let m = AllocMetrics {
            scores: vec![NodeScore {
                node_name: "n1".into(),
                scores: ScorerScores {
                    binpack: Some(0.3333),
                    allocation_spread: Some(0.5),
                    ..ScorerScores::default()
                },
                norm_score: 0.41665,
            }],
            ..AllocMetrics::default()
        };
        assert_eq!(
            score_table(&m).unwrap(),
            "Node  binpack  allocation-spread  final score\nn1    0.333    0.5                0.417\n"
        );
        assert_eq!(number(1.0), "1");
        assert_eq!(number(-0.0001), "0");
    }

    #[test]
    fn times_render_as_nomad_does() {
        let at = humantime::parse_rfc3339("2026-01-02T15:04:05Z").unwrap();
        assert_eq!(timestamp(at), "2026-01-02T15:04:05Z");
        let later = humantime::parse_rfc3339("2026-01-02T15:09:05Z").unwrap();
        assert_eq!(ago(Some("2026-01-02T15:04:05Z"), later), "5m ago");
        assert_eq!(ago(None, later), "<none>");
    }
}
