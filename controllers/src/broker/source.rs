//! [`EvalSource`]: where scheduler workers take evaluations from and settle them — the
//! leader's [`EvalBroker`] in its own process, or the same broker over HTTP from a follower.

use std::future::Future;
use std::time::Duration;

use caravan_schemas::evaluation::EvaluationType;

use super::{BrokerError, Delivery, EvalBroker, Token};

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

impl EvalSource for EvalBroker {
    async fn dequeue(&self, types: &[EvaluationType], timeout: Duration) -> Option<Delivery> {
        EvalBroker::dequeue(self, types, timeout).await
    }

    async fn ack(&self, eval: &str, token: Token) -> Result<(), BrokerError> {
        EvalBroker::ack(self, eval, token)
    }

    async fn nack(&self, eval: &str, token: Token) -> Result<(), BrokerError> {
        EvalBroker::nack(self, eval, token)
    }

    async fn outstanding_reset(&self, eval: &str, token: Token) -> Result<(), BrokerError> {
        EvalBroker::outstanding_reset(self, eval, token)
    }

    async fn pause_nack_timeout(&self, eval: &str, token: Token) -> Result<(), BrokerError> {
        EvalBroker::pause_nack_timeout(self, eval, token)
    }

    async fn resume_nack_timeout(&self, eval: &str, token: Token) -> Result<(), BrokerError> {
        EvalBroker::resume_nack_timeout(self, eval, token)
    }
}
