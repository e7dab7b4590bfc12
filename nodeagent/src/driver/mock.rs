//! The `mock` driver: simulated work for tests and benchmarks, in the agent's process (no
//! executor). Config: `runFor` (how long the task runs; absent = until stopped), `exitCode`,
//! `startError` (a message: starting fails), `startErrorRecoverable` (whether a restart may
//! help; default true), `killAfter` (how long the task takes to exit once signalled).
//! A restarted agent recovers mock tasks from their start time.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use caravan_schemas::node::DriverInfo;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::{Driver, DriverError, ExitResult, TaskHandle, TaskSpec};

/// The mock driver.
#[derive(Debug, Default, Clone)]
pub struct MockDriver;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MockConfig {
    #[serde(default, with = "opt_duration")]
    run_for: Option<Duration>,
    #[serde(default)]
    exit_code: i32,
    #[serde(default)]
    start_error: Option<String>,
    #[serde(default)]
    start_error_recoverable: Option<bool>,
    #[serde(default, with = "opt_duration")]
    kill_after: Option<Duration>,
}

/// What a restarted agent needs to find a mock task again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MockState {
    started_unix_ms: u64,
    config: MockConfig,
}

fn parse_config(config: &Map<String, Value>) -> Result<MockConfig, DriverError> {
    serde_json::from_value(Value::Object(config.clone()))
        .map_err(|e| DriverError::InvalidConfig(format!("mock driver config: {e}")))
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Driver for MockDriver {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn fingerprint(&self) -> DriverInfo {
        DriverInfo {
            detected: true,
            healthy: true,
            health_description: Some("Healthy".into()),
            ..Default::default()
        }
    }

    fn start(&self, spec: TaskSpec) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        async move {
            crate::paths::check_task_spec(&spec)
                .map_err(|e| DriverError::InvalidConfig(e.to_string()))?;
            let config = parse_config(&spec.config)?;
            if let Some(message) = &config.start_error {
                return Err(if config.start_error_recoverable.unwrap_or(true) {
                    DriverError::Start(message.clone())
                } else {
                    DriverError::InvalidConfig(message.clone())
                });
            }
            let state = MockState {
                started_unix_ms: unix_ms(SystemTime::now()),
                config,
            };
            Ok(Box::new(MockHandle::spawn(state)) as Box<dyn TaskHandle>)
        }
        .boxed()
    }

    fn recover(
        &self,
        _spec: TaskSpec,
        state: Value,
    ) -> BoxFuture<'_, Result<Box<dyn TaskHandle>, DriverError>> {
        async move {
            let state: MockState = serde_json::from_value(state)
                .map_err(|e| DriverError::Gone(format!("unreadable mock task state: {e}")))?;
            Ok(Box::new(MockHandle::spawn(state)) as Box<dyn TaskHandle>)
        }
        .boxed()
    }
}

struct MockHandle {
    state: MockState,
    signal_tx: watch::Sender<Option<i32>>,
    exit_rx: watch::Receiver<Option<ExitResult>>,
}

impl MockHandle {
    fn spawn(state: MockState) -> Self {
        let (signal_tx, mut signal_rx) = watch::channel(None::<i32>);
        let (exit_tx, exit_rx) = watch::channel(None);
        let elapsed =
            Duration::from_millis(unix_ms(SystemTime::now()).saturating_sub(state.started_unix_ms));
        let remaining = state.config.run_for.map(|d| d.saturating_sub(elapsed));
        let exit_code = state.config.exit_code;
        let kill_after = state.config.kill_after.unwrap_or_default();
        tokio::spawn(async move {
            let finished = async {
                match remaining {
                    Some(d) => tokio::time::sleep(d).await,
                    None => futures::future::pending().await,
                }
            };
            let result = tokio::select! {
                _ = finished => ExitResult { exit_code, ..Default::default() },
                signal = async {
                    loop {
                        if let Some(s) = *signal_rx.borrow_and_update() {
                            return s;
                        }
                        if signal_rx.changed().await.is_err() {
                            futures::future::pending::<()>().await;
                        }
                    }
                } => {
                    tokio::time::sleep(kill_after).await;
                    ExitResult { exit_code: 128 + signal, signal: Some(signal), ..Default::default() }
                }
            };
            let _ = exit_tx.send(Some(result));
        });
        Self {
            state,
            signal_tx,
            exit_rx,
        }
    }
}

impl TaskHandle for MockHandle {
    fn pid(&self) -> Option<u32> {
        None
    }

    fn state(&self) -> Value {
        serde_json::to_value(&self.state).unwrap_or(Value::Null)
    }

    fn wait(&self) -> BoxFuture<'_, ExitResult> {
        let mut rx = self.exit_rx.clone();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(result) => result.clone().unwrap_or_default(),
                Err(_) => ExitResult {
                    error: Some("mock task vanished".into()),
                    ..Default::default()
                },
            }
        }
        .boxed()
    }

    fn signal(&self, signal: i32) -> BoxFuture<'_, Result<(), DriverError>> {
        let _ = self.signal_tx.send(Some(signal));
        async { Ok(()) }.boxed()
    }

    fn destroy(&self) -> BoxFuture<'_, ()> {
        async {}.boxed()
    }
}

/// The mock driver shared by every task runner.
pub fn driver() -> Arc<dyn Driver> {
    Arc::new(MockDriver)
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| humantime::format_duration(d).to_string())
            .serialize(s)
    }

    /// A humantime string (`"1s"`, `"250ms"`) or a number of nanoseconds, as Nomad accepts.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => humantime::parse_duration(&s)
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|n| Some(Duration::from_nanos(n)))
                .ok_or_else(|| serde::de::Error::custom("expected a non-negative duration")),
            Some(other) => Err(serde::de::Error::custom(format!(
                "expected a duration such as \"5s\", got {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::driver::{LogLimits, TaskResources};

    fn spec(config: Value) -> TaskSpec {
        TaskSpec {
            alloc_id: "a".into(),
            alloc_name: "a".into(),
            namespace: "default".into(),
            job_name: "j".into(),
            group_name: "g".into(),
            task_name: "t".into(),
            driver: "mock".into(),
            config: config.as_object().cloned().unwrap_or_default(),
            env: Default::default(),
            user: None,
            alloc_dir: PathBuf::from("/nonexistent"),
            task_dir: PathBuf::from("/nonexistent/t"),
            log_dir: PathBuf::from("/nonexistent/alloc/logs"),
            resources: TaskResources::default(),
            logs: LogLimits::default(),
            kill_signal: "SIGINT".into(),
            kill_timeout: Duration::from_secs(5),
            netns: None,
        }
    }

    #[tokio::test]
    async fn runs_for_its_time_and_exits_with_its_code() {
        let handle = MockDriver
            .start(spec(serde_json::json!({"runFor": "20ms", "exitCode": 3})))
            .await
            .unwrap();
        assert_eq!(handle.wait().await.exit_code, 3);
        assert_eq!(handle.wait().await.exit_code, 3, "wait is repeatable");
    }

    #[tokio::test]
    async fn signals_end_the_task_and_start_errors_are_reported() {
        let handle = MockDriver.start(spec(serde_json::json!({}))).await.unwrap();
        handle.signal(2).await.unwrap();
        assert_eq!(handle.wait().await.signal, Some(2));
        let Err(DriverError::Start(msg)) = MockDriver
            .start(spec(serde_json::json!({"startError": "boom"})))
            .await
        else {
            panic!("expected a start error")
        };
        assert_eq!(msg, "boom");
        assert!(matches!(
            MockDriver
                .start(spec(serde_json::json!({"runFor": true})))
                .await,
            Err(DriverError::InvalidConfig(_))
        ));
    }

    #[tokio::test]
    async fn recovered_tasks_keep_their_deadline() {
        let handle = MockDriver
            .start(spec(serde_json::json!({"runFor": "50ms"})))
            .await
            .unwrap();
        let state = handle.state();
        drop(handle);
        let recovered = MockDriver
            .recover(spec(serde_json::json!({})), state)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        assert_eq!(recovered.wait().await.exit_code, 0);
        assert!(started.elapsed() < Duration::from_millis(200));
    }
}
