//! The leader's [`EvalBroker`] as an [`EvalSource`] for scheduler workers in its own process.

use std::time::Duration;

use caravan_runtime::eval_source::EvalSource;
use caravan_schemas::evaluation::EvaluationType;

use super::{BrokerError, Delivery, EvalBroker, Token};

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
