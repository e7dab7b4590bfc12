//! The tokens and policies of this server's replica, compiled: a token's secret hash → what
//! it may do. Rebuilt on the first request after either kind changed, which the watch cache's
//! per-kind revisions tell without touching the state's lock (so authorizing a request never
//! waits behind the writes being applied).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use caravan_schemas::acl::{ANONYMOUS_POLICY, Acl};
use caravan_schemas::{AclPolicy, AclToken, Kind, TokenType};

use crate::raft::ReplicatedStore;
use crate::store::Objects;

/// What a token may do.
#[derive(Debug)]
pub struct Resolved {
    /// The token's accessor id.
    pub accessor: String,
    /// Its ACL (everything for a management token).
    pub acl: Arc<Acl>,
    /// When it stops working (Unix seconds), if ever.
    pub expires: Option<i64>,
}

/// One compiled generation of tokens and policies.
#[derive(Debug, Default)]
pub struct Compiled {
    by_hash: HashMap<String, Arc<Resolved>>,
    /// What requests without a token may do: the `anonymous` policy, else nothing.
    pub anonymous: Arc<Acl>,
}

impl Compiled {
    /// The token whose secret hashes to `hash`.
    pub fn token(&self, hash: &str) -> Option<&Arc<Resolved>> {
        self.by_hash.get(hash)
    }

    fn build(tokens: &Objects, policies: &Objects) -> Compiled {
        let specs: HashMap<String, caravan_schemas::AclPolicySpec> = policies
            .values()
            .filter_map(|o| serde_json::from_slice::<AclPolicy>(&o.json).ok())
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), p.spec))
            .collect();
        let management = Arc::new(Acl::management());
        let mut by_hash = HashMap::with_capacity(tokens.len());
        for object in tokens.values() {
            let Ok(token) = serde_json::from_slice::<AclToken>(&object.json) else {
                continue;
            };
            let Some(hash) = token.secret_hash() else {
                continue;
            };
            let acl = match token.spec.token_type {
                TokenType::Management => management.clone(),
                // A policy that does not exist (yet) grants nothing.
                TokenType::Client => Arc::new(Acl::compile(
                    token
                        .spec
                        .policies
                        .iter()
                        .filter_map(|name| specs.get(name)),
                )),
            };
            let expires = token
                .spec
                .expiration_time
                .as_deref()
                .and_then(caravan_schemas::time::parse_rfc3339);
            by_hash.insert(
                hash.to_string(),
                Arc::new(Resolved {
                    accessor: object.key.name.clone(),
                    acl,
                    expires,
                }),
            );
        }
        let anonymous = Arc::new(Acl::compile(specs.get(ANONYMOUS_POLICY)));
        Compiled { by_hash, anonymous }
    }
}

/// The compiled tokens and policies, with the revisions of the ACL kinds they were built at.
#[derive(Debug)]
struct Generation {
    revisions: (u64, u64),
    compiled: Arc<Compiled>,
}

/// The compiled tokens and policies, current with the state as of the last request.
#[derive(Debug)]
pub struct AclCache {
    current: RwLock<Generation>,
}

impl Default for AclCache {
    fn default() -> Self {
        AclCache {
            // Never a real pair of revisions: the first request builds.
            current: RwLock::new(Generation {
                revisions: (u64::MAX, u64::MAX),
                compiled: Arc::default(),
            }),
        }
    }
}

impl AclCache {
    /// The compiled ACLs of `store`'s state now: the cached ones while neither ACL kind
    /// changed, else rebuilt from the state.
    pub fn of_store(&self, store: &ReplicatedStore) -> Arc<Compiled> {
        let cache = store.watch_cache();
        let revisions = (
            cache.kind_revision(Kind::AclToken),
            cache.kind_revision(Kind::AclPolicy),
        );
        {
            let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
            if current.revisions == revisions {
                return current.compiled.clone();
            }
        }
        let (tokens, policies) = {
            let state = store.state();
            (
                state.objects_of(Kind::AclToken),
                state.objects_of(Kind::AclPolicy),
            )
        };
        let compiled = Arc::new(Compiled::build(&tokens, &policies));
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = Generation {
            revisions,
            compiled: compiled.clone(),
        };
        compiled
    }
}
