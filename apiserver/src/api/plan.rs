//! Submitting a scheduler's plan: validation and server-owned fields (pure, [`prepare_plan`]),
//! then one `Op::Plan` through Raft ([`submit_plan`]). The HTTP endpoint
//! (`POST …/namespaces/{ns}/evaluations/{name}/plan`, `http/plan.rs`) and in-process clients
//! both come here.
//!
//! ```text
//! Plan ─▶ evaluation exists? ─▶ prepare_plan: namespace, job and node of every allocation,
//!                                   uid / creationTimestamp / generation, schemas::admit
//!      ─▶ ReplicatedStore::write_outcome(Op::Plan) ─▶ State::apply: per-node fit re-check and commit
//!      ◀─ PlanResult (committed parts; refresh_index ≠ 0 when a node part was rejected)
//! ```

use std::collections::BTreeSet;
use std::time::SystemTime;

use caravan_schemas::allocation::DesiredStatus;
use caravan_schemas::plan::{Plan, PlanResult};
use caravan_schemas::{FieldError, FieldErrorKind, Kind, admit_allocation};

use super::error::Error;
use crate::context::ApiContext;
use crate::store::{ObjectKey, Op, PlanOp};

/// Checks `plan` and fills the fields the server owns, so applying it is deterministic.
///
/// Every allocation must be in the plan's namespace ([`Error::BadRequest`] otherwise), belong
/// to the plan's job, sit under the node its `spec.nodeName` names, have a name unique in the
/// plan and pass admission ([`Error::Invalid`] with every failing field otherwise). Missing
/// `uid`, `creationTimestamp` and `generation` are filled (`new_uid` draws uids); allocations
/// that already exist keep their stored ones when the plan is applied. Stops must name an
/// allocation and ask `stop` or `evict`.
pub fn prepare_plan(
    mut plan: Plan,
    now: SystemTime,
    new_uid: &mut dyn FnMut() -> String,
) -> Result<PlanOp, Error> {
    let mut causes = Vec::new();
    for (field, value) in [
        ("namespace", &plan.namespace),
        ("evalName", &plan.eval_name),
        ("jobName", &plan.job_name),
    ] {
        if value.is_empty() {
            causes.push(cause(
                field.to_owned(),
                FieldErrorKind::Required,
                "must be set",
            ));
        }
    }
    for (node, stops) in &plan.node_update {
        if node.is_empty() {
            causes.push(cause(
                "nodeUpdate".to_owned(),
                FieldErrorKind::Invalid,
                "node names must not be empty",
            ));
        }
        for (i, stop) in stops.iter().enumerate() {
            let at = format!("nodeUpdate[{node}][{i}]");
            if stop.alloc_name.is_empty() {
                causes.push(cause(
                    format!("{at}.allocName"),
                    FieldErrorKind::Required,
                    "must be set",
                ));
            }
            if stop.desired_status == DesiredStatus::Run {
                causes.push(cause(
                    format!("{at}.desiredStatus"),
                    FieldErrorKind::NotSupported,
                    "a stop must ask stop or evict",
                ));
            }
        }
    }

    let timestamp = humantime::format_rfc3339_seconds(now).to_string();
    let mut names = BTreeSet::new();
    for (node, allocs) in &mut plan.node_allocation {
        for (i, alloc) in allocs.iter_mut().enumerate() {
            let at = format!("nodeAllocation[{node}][{i}]");
            match alloc.metadata.namespace.as_deref() {
                None | Some("") => alloc.metadata.namespace = Some(plan.namespace.clone()),
                Some(ns) if ns == plan.namespace => {}
                Some(ns) => {
                    return Err(Error::BadRequest(format!(
                        "{at}: the namespace of the allocation ({ns}) does not match the namespace of the plan ({})",
                        plan.namespace
                    )));
                }
            }
            let name = alloc.metadata.name().to_string();
            if name.is_empty() {
                causes.push(cause(
                    format!("{at}.metadata.name"),
                    FieldErrorKind::Required,
                    "must be set",
                ));
            } else if !names.insert(name) {
                causes.push(cause(
                    format!("{at}.metadata.name"),
                    FieldErrorKind::Duplicate,
                    "the plan places this allocation twice",
                ));
            }
            if alloc.spec.job_name != plan.job_name {
                causes.push(cause(
                    format!("{at}.spec.jobName"),
                    FieldErrorKind::Invalid,
                    "must be the job of the plan",
                ));
            }
            if alloc.spec.node_name != *node {
                causes.push(cause(
                    format!("{at}.spec.nodeName"),
                    FieldErrorKind::Invalid,
                    "must be the node the plan places the allocation on",
                ));
            }
            let meta = &mut alloc.metadata;
            meta.resource_version = None;
            meta.uid.get_or_insert_with(&mut *new_uid);
            meta.creation_timestamp
                .get_or_insert_with(|| timestamp.clone());
            meta.generation.get_or_insert(1);
            match admit_allocation(alloc) {
                Ok(()) => {}
                Err(errors) => causes.extend(errors.into_iter().map(|e| FieldError {
                    field: format!("{at}.{}", e.field),
                    ..e
                })),
            }
        }
    }
    if !causes.is_empty() {
        return Err(Error::Invalid {
            kind: Kind::Evaluation,
            name: plan.eval_name,
            causes,
        });
    }
    Ok(PlanOp { plan })
}

/// A failing field.
fn cause(field: String, kind: FieldErrorKind, message: &str) -> FieldError {
    FieldError {
        field,
        kind,
        message: message.to_owned(),
    }
}

/// Submits `plan` (its namespace and evaluation set) and waits until it is applied: what was
/// committed, with `refresh_index` non-zero when part of it was rejected and must be retried on
/// fresher state. The evaluation must exist ([`Error::NotFound`] otherwise); a malformed plan
/// is [`Error::BadRequest`] or [`Error::Invalid`]. An empty plan is answered without a write.
pub async fn submit_plan(ctx: &ApiContext, plan: Plan) -> Result<PlanResult, Error> {
    let store = &ctx.store;
    let eval = ObjectKey {
        kind: Kind::Evaluation,
        namespace: plan.namespace.clone(),
        name: plan.eval_name.clone(),
    };
    let revision = {
        let state = store.state();
        if !plan.eval_name.is_empty() && state.get(&eval).is_none() {
            return Err(Error::not_found(Kind::Evaluation, &plan.eval_name));
        }
        state.revision()
    };
    let op = prepare_plan(plan, SystemTime::now(), &mut || {
        uuid::Uuid::new_v4().to_string()
    })?;
    if op.plan.is_no_op() {
        return Ok(PlanResult {
            alloc_index: revision,
            ..PlanResult::default()
        });
    }
    let outcome = store
        .write_outcome(Op::Plan(op))
        .await
        .map_err(|e| Error::from_write(e, Kind::Evaluation, &eval.name))?;
    outcome
        .plan()
        .map(|result| PlanResult::clone(result))
        .ok_or_else(|| Error::Internal("the store answered a plan with an object".to_owned()))
}

#[cfg(test)]
mod tests {
    use caravan_schemas::mock;

    use super::*;

    fn plan() -> Plan {
        let job = mock::job("web");
        let node = mock::node("n1");
        let mut plan = Plan {
            eval_name: "e1".to_owned(),
            namespace: "default".to_owned(),
            job_name: "web".to_owned(),
            ..Plan::default()
        };
        let mut alloc = mock::allocation("web-g-0-0a1b2c3d", &job, &node);
        alloc.metadata.uid = None;
        alloc.metadata.creation_timestamp = None;
        plan.append_alloc(alloc);
        plan.append_stop("n1", "old", DesiredStatus::Stop, "replaced");
        plan
    }

    fn prepare(plan: Plan) -> Result<PlanOp, Error> {
        prepare_plan(plan, SystemTime::UNIX_EPOCH, &mut || "uid-1".to_owned())
    }

    #[test]
    fn server_fields_are_filled() {
        let op = prepare(plan()).expect("valid");
        let alloc = &op.plan.node_allocation["n1"][0];
        assert_eq!(alloc.metadata.uid.as_deref(), Some("uid-1"));
        assert_eq!(
            alloc.metadata.creation_timestamp.as_deref(),
            Some("1970-01-01T00:00:00Z")
        );
        assert_eq!(alloc.metadata.generation, Some(1));
        assert_eq!(alloc.metadata.namespace.as_deref(), Some("default"));
    }

    #[test]
    fn another_namespace_is_a_bad_request() {
        let mut plan = plan();
        if let Some(allocs) = plan.node_allocation.get_mut("n1") {
            allocs[0].metadata.namespace = Some("prod".to_owned());
        }
        assert!(matches!(prepare(plan), Err(Error::BadRequest(_))));
    }

    #[test]
    fn wrong_job_node_and_stops_are_invalid_with_every_field() {
        let mut plan = plan();
        if let Some(allocs) = plan.node_allocation.get_mut("n1") {
            allocs[0].spec.job_name = "other".to_owned();
            allocs[0].spec.node_name = "n2".to_owned();
        }
        plan.append_stop("n1", "", DesiredStatus::Run, "no");
        let Err(Error::Invalid { causes, .. }) = prepare(plan) else {
            panic!("expected Invalid");
        };
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "nodeUpdate[n1][1].allocName",
                "nodeUpdate[n1][1].desiredStatus",
                "nodeAllocation[n1][0].spec.jobName",
                "nodeAllocation[n1][0].spec.nodeName",
            ]
        );
    }

    #[test]
    fn schema_errors_are_prefixed_with_the_allocation() {
        let mut plan = plan();
        if let Some(allocs) = plan.node_allocation.get_mut("n1") {
            allocs[0].spec.group = String::new();
            allocs[0].kind = "Job".to_owned();
        }
        let Err(Error::Invalid { causes, .. }) = prepare(plan) else {
            panic!("expected Invalid");
        };
        assert!(
            causes
                .iter()
                .all(|c| c.field.starts_with("nodeAllocation[n1][0]")),
            "{causes:?}"
        );
    }
}
