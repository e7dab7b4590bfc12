//! [`EvalSource`]: where scheduler workers take evaluations from and settle them — the
//! leader's eval broker in its own process, or the same broker over HTTP from a follower — and
//! the broker's wire types ([`Delivery`], [`Token`], [`BrokerError`]).

use std::fmt;
use std::future::Future;
use std::time::Duration;

use caravan_schemas::Evaluation;
use caravan_schemas::evaluation::EvaluationType;

/// Proof of delivery of one evaluation: the worker acks or nacks with it. Tokens are never
/// reused by a broker, so a stale token (after a nack timeout or a flush) is always refused.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Token(u64);

impl Token {
    /// The token numbered `n`; only the broker that issues tokens should make them.
    pub fn new(n: u64) -> Self {
        Token(n)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One evaluation handed to a worker.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The evaluation as it was enqueued.
    pub eval: Evaluation,
    /// Token to ack or nack with.
    pub token: Token,
    /// How many times the evaluation has been delivered, this time included.
    pub deliveries: u32,
}

/// Why an ack, nack or reset was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// No outstanding delivery has this token: it was acked, nacked, timed out or flushed.
    #[error("evaluation {eval} is not outstanding with token {token}")]
    NotOutstanding {
        /// Name of the evaluation.
        eval: String,
        /// Token presented.
        token: Token,
    },
    /// The token belongs to another evaluation.
    #[error("token {token} was issued for evaluation {actual}, not {eval}")]
    TokenMismatch {
        /// Name presented.
        eval: String,
        /// Token presented.
        token: Token,
        /// Evaluation the token was issued for.
        actual: String,
    },
    /// The leader's broker could not be reached (a worker on a follower).
    #[error("the eval broker is unreachable: {0}")]
    Unreachable(String),
}

/// The broker operations a scheduler worker uses.
pub trait EvalSource: Clone + Send + Sync + 'static {
    /// The next ready evaluation of one of `types`, waiting up to `timeout`.
    fn dequeue(
        &self,
        types: &[EvaluationType],
        timeout: Duration,
    ) -> impl Future<Output = Option<Delivery>> + Send;

    fn ack(&self, eval: &str, token: Token)
    -> impl Future<Output = Result<(), BrokerError>> + Send;

    fn nack(
        &self,
        eval: &str,
        token: Token,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Restarts the delivery's nack timeout (the worker is making progress).
    fn outstanding_reset(
        &self,
        eval: &str,
        token: Token,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    /// Stops the nack timeout while the plan applier works.
    fn pause_nack_timeout(
        &self,
        eval: &str,
        token: Token,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;

    fn resume_nack_timeout(
        &self,
        eval: &str,
        token: Token,
    ) -> impl Future<Output = Result<(), BrokerError>> + Send;
}
