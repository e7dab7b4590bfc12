//! A garbage collection pass on request (Nomad's `PUT /v1/system/gc`), run by the leader's
//! controllers' collection loop.
//!
//! Without `force` the configured thresholds apply; with it every threshold is zero, as in
//! Nomad's forced collection. Either way nothing live is deleted.

use std::time::Duration;

use caravan_controllers::gc::GcError;
use caravan_schemas::gc::GcSummary;

use super::error::Error;
use crate::context::ApiContext;

/// How long a request waits for its pass; clients give up after a minute.
const PASS_TIMEOUT: Duration = Duration::from_secs(50);

/// Runs a garbage collection pass now and answers what it deleted.
pub async fn collect_garbage(ctx: &ApiContext, force: bool) -> Result<GcSummary, Error> {
    let trigger = ctx.gc_trigger().ok_or_else(|| {
        Error::Unavailable(
            "garbage collection runs with the leader's controllers, and this server runs none \
             (--no-controllers)"
                .into(),
        )
    })?;
    match tokio::time::timeout(PASS_TIMEOUT, trigger.collect(force)).await {
        Ok(Ok(summary)) => Ok(summary),
        Ok(Err(GcError::NotRunning)) => Err(Error::Unavailable(
            "garbage collection is not running on this server".into(),
        )),
        Err(_) => Err(Error::Unavailable(format!(
            "the garbage collection pass did not finish within {PASS_TIMEOUT:?}; it goes on"
        ))),
    }
}
