//! Making tokens: `caravan acl bootstrap` (once; again only with the reset index an operator
//! writes into a server's data dir, as Nomad's `acl-bootstrap-reset`) and `caravan acl token
//! create`. A secret is made here, answered once, and stored only as its hash.

use caravan_schemas::acl::BOOTSTRAP_RECORD;
use caravan_schemas::meta::ObjectMeta;
use caravan_schemas::{
    AclToken, AclTokenSpec, AclTokenStatus, FieldError, FieldErrorKind, Kind, TokenType,
};
use serde_json::Value;

use crate::api::{self, Error, WriteOptions};
use crate::context::ApiContext;
use crate::store::{ObjectKey, Op, Precondition};

/// A token just made: the stored object and its secret, which is never shown again.
#[derive(Debug)]
pub struct Created {
    pub object: Value,
    pub secret: String,
}

fn key(name: &str) -> ObjectKey {
    ObjectKey {
        kind: Kind::AclToken,
        namespace: String::new(),
        name: name.to_string(),
    }
}

fn token_object(name: &str, spec: AclTokenSpec, secret_hash: String) -> Value {
    let token = AclToken {
        api_version: caravan_schemas::API_VERSION.to_string(),
        kind: Kind::AclToken.name().to_string(),
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        spec,
        status: Some(AclTokenStatus { secret_hash }),
    };
    serde_json::to_value(token).expect("a token serializes")
}

fn stored_value(outcome: api::Outcome) -> Value {
    match outcome.object {
        api::Payload::Stored(object) => object.to_value(),
        api::Payload::Value(value) => value,
    }
}

/// Creates a token with `spec`; its policies must exist.
pub async fn create(ctx: &ApiContext, spec: AclTokenSpec) -> Result<Created, Error> {
    let accessor = uuid::Uuid::new_v4().to_string();
    let missing: Vec<FieldError> = {
        let state = ctx.store.state();
        spec.policies
            .iter()
            .enumerate()
            .filter(|(_, name)| {
                state
                    .get(&ObjectKey {
                        kind: Kind::AclPolicy,
                        namespace: String::new(),
                        name: name.to_string(),
                    })
                    .is_none()
            })
            .map(|(i, name)| FieldError {
                field: format!("spec.policies[{i}]"),
                kind: FieldErrorKind::Invalid,
                message: format!("ACLPolicy {name:?} not found"),
            })
            .collect()
    };
    if !missing.is_empty() {
        return Err(Error::Invalid {
            kind: Kind::AclToken,
            name: accessor,
            causes: missing,
        });
    }
    let secret = uuid::Uuid::new_v4().to_string();
    let value = token_object(&accessor, spec, super::secret_hash(&secret));
    let outcome =
        api::create_by_server(ctx, Kind::AclToken, "", value, &WriteOptions::default()).await?;
    Ok(Created {
        object: stored_value(outcome),
        secret,
    })
}

/// Bootstraps ACLs: records it, then makes the first management token. Refused once done,
/// unless the reset file holds the record's index.
pub async fn bootstrap(ctx: &ApiContext) -> Result<Created, Error> {
    let config = &ctx.config.acl;
    if !config.enabled {
        return Err(Error::BadRequest(
            "ACLs are disabled: start the servers with --acl-enabled (acl.enabled) first".into(),
        ));
    }
    let record = ctx.store.state().get(&key(BOOTSTRAP_RECORD));
    if let Some(record) = record {
        let index = record.resource_version;
        let reset = match &config.bootstrap_reset_file {
            Some(path) => tokio::fs::read_to_string(path).await.ok(),
            None => None,
        };
        if reset.as_deref().map(str::trim) != Some(index.to_string().as_str()) {
            return Err(Error::Conflict {
                kind: Kind::AclToken,
                name: BOOTSTRAP_RECORD.to_string(),
                message: format!(
                    "ACLs were already bootstrapped (reset index: {index}): to bootstrap again, \
                     write {index} into acl-bootstrap-reset in a server's data dir"
                ),
            });
        }
        ctx.store
            .write(Op::Delete {
                key: key(BOOTSTRAP_RECORD),
                expect: Precondition::ResourceVersion(index),
            })
            .await
            .map_err(|e| Error::from_write(e, Kind::AclToken, BOOTSTRAP_RECORD))?;
    }
    let record = token_object(
        BOOTSTRAP_RECORD,
        AclTokenSpec {
            display_name: Some("Records that ACLs were bootstrapped; not a usable token".into()),
            ..AclTokenSpec::default()
        },
        String::new(),
    );
    // The first bootstrap wins: the record is created only where none is.
    api::create_by_server(ctx, Kind::AclToken, "", record, &WriteOptions::default())
        .await
        .map_err(|e| match e {
            Error::AlreadyExists { .. } => Error::Conflict {
                kind: Kind::AclToken,
                name: BOOTSTRAP_RECORD.to_string(),
                message: "ACLs were already bootstrapped".into(),
            },
            e => e,
        })?;
    create(
        ctx,
        AclTokenSpec {
            display_name: Some("Bootstrap Token".into()),
            token_type: TokenType::Management,
            ..AclTokenSpec::default()
        },
    )
    .await
}
