//! Delete: immediate without finalizers, otherwise `deletionTimestamp` is set and the object
//! stays until its last finalizer is removed. A Job's JobVersions go with it, in the same
//! entry (the state machine deletes them); clients cannot delete JobVersions themselves.

use std::time::SystemTime;

use caravan_runtime::Subresource;
use caravan_schemas::Kind;

use super::error::Error;
use super::job_version;
use super::options::DeleteOptions;
use super::outcome::Outcome;
use super::prepare::{self, mark_deleting};
use super::write::{MAX_ATTEMPTS, current, key};
use crate::context::ApiContext;
use crate::raft::WriteError;
use crate::store::{ObjectJson, Op, OpError, Precondition};

/// Deletes an object, or marks it as being deleted while finalizers hold it. A lost race is
/// retried on the fresh object, unless the preconditions name a resourceVersion.
pub async fn delete(
    ctx: &ApiContext,
    kind: Kind,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
) -> Result<Outcome, Error> {
    job_version::check_client_write(kind, Subresource::Main, "delete")?;
    if kind == Kind::AclToken && name == caravan_schemas::acl::BOOTSTRAP_RECORD {
        // Deleting it would let anyone bootstrap again; the reset index is the way back.
        return Err(Error::MethodNotAllowed(format!(
            "acltokens.{} {name:?} records that ACLs were bootstrapped and cannot be deleted: \
             to bootstrap again, write its resourceVersion into acl-bootstrap-reset in the \
             leader's data dir",
            caravan_schemas::GROUP
        )));
    }
    let key = key(kind, namespace, name);
    let pre = &options.preconditions;
    for _ in 0..MAX_ATTEMPTS {
        let cur = current(ctx, &key).ok_or_else(|| Error::not_found(kind, &key.name))?;
        if let Some(guard) = &options.guard {
            guard.check(&cur)?;
        }
        if let Some(uid) = pre.uid.as_deref().filter(|u| *u != cur.uid) {
            return Err(precondition_failed(kind, &key.name, "UID", uid, &cur.uid));
        }
        if let Some(rv) = pre
            .resource_version
            .filter(|rv| *rv != cur.resource_version)
        {
            return Err(precondition_failed(
                kind,
                &key.name,
                "ResourceVersion",
                &rv.to_string(),
                &cur.resource_version.to_string(),
            ));
        }
        if kind == Kind::Namespace {
            check_namespace_empty(ctx, &key.name)?;
        }
        let value = cur.to_value();
        let holds = !prepare::finalizers(&value).is_empty();
        if holds && value.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Outcome::stored(cur));
        }
        let op = if holds {
            Op::Put {
                kind,
                object: ObjectJson::from_value(mark_deleting(value.clone(), SystemTime::now())),
                expect: Precondition::ResourceVersion(cur.resource_version),
                // Marking a job as being deleted leaves its spec, and its versions, as they are.
                version: None,
            }
        } else {
            Op::Delete {
                key: key.clone(),
                expect: Precondition::ResourceVersion(cur.resource_version),
            }
        };
        if options.dry_run {
            return Ok(Outcome::stored(cur));
        }
        match ctx.store.write(op).await {
            Ok(stored) => return Ok(Outcome::stored(stored)),
            Err(WriteError::Rejected(OpError::Conflict { .. }))
                if pre.resource_version.is_none() =>
            {
                continue;
            }
            Err(e) => return Err(Error::from_write(e, kind, &key.name)),
        }
    }
    Err(Error::conflict(kind, &key.name))
}

fn precondition_failed(kind: Kind, name: &str, what: &str, wanted: &str, actual: &str) -> Error {
    Error::Conflict {
        kind,
        name: name.to_string(),
        message: format!(
            "Precondition failed: {what} in precondition: {wanted}, {what} in object meta: {actual}"
        ),
    }
}

/// A namespace is deleted only once nothing lives in it.
fn check_namespace_empty(ctx: &ApiContext, ns: &str) -> Result<(), Error> {
    let state = ctx.store.state();
    let occupied = Kind::ALL
        .into_iter()
        .filter(|k| k.namespaced())
        .find(|k| state.list(*k, Some(ns), None).next().is_some());
    match occupied {
        Some(k) => Err(Error::Conflict {
            kind: Kind::Namespace,
            name: ns.to_string(),
            message: format!(
                "namespace {ns:?} is not empty: it still holds {}; delete them first",
                k.plural()
            ),
        }),
        None => Ok(()),
    }
}
