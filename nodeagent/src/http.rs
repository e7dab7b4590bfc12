//! The node agent's HTTP API, as far as servers need it: task logs at Nomad's path.
//!
//! ```text
//! GET /v1/client/fs/logs/{alloc_id}?task=T&type=stdout|stderr&follow=true|false&tail=N
//!   ─▶ logs::resolve (400 an alloc id that is no UUID, a task name that is no plain path
//!      component, a bad type; 404 unknown alloc or task), before any file is touched
//!   ─▶ 200 text/plain: logs::LogReader chunks, polled every 200 ms while following
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::logs::{self, LogError, LogReader, LogType};

/// How often a followed log is checked for new output.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Largest chunk sent at once.
const CHUNK: usize = 64 * 1024;

/// The agent's routes; `alloc_root` holds one directory per allocation id.
pub fn router(alloc_root: PathBuf) -> Router {
    Router::new()
        .route("/v1/client/fs/logs/{alloc_id}", get(task_logs))
        .with_state(Arc::new(alloc_root))
}

/// The parsed query of a log request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct LogQuery {
    task: Option<String>,
    ty: LogType,
    follow: bool,
    tail: Option<u64>,
}

fn parse_query(params: &HashMap<String, String>) -> Result<LogQuery, String> {
    let ty = match params.get("type").map(String::as_str) {
        None | Some("") => LogType::Stdout,
        Some(t) => {
            LogType::parse(t).ok_or_else(|| format!("type must be stdout or stderr, got {t:?}"))?
        }
    };
    let follow = match params.get("follow").map(String::as_str) {
        None | Some("") | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(f) => return Err(format!("follow must be true or false, got {f:?}")),
    };
    let tail = match params.get("tail").map(String::as_str) {
        None | Some("") => None,
        Some(n) => Some(
            n.parse()
                .map_err(|_| format!("tail must be a number of lines, got {n:?}"))?,
        ),
    };
    Ok(LogQuery {
        task: params.get("task").filter(|t| !t.is_empty()).cloned(),
        ty,
        follow,
        tail,
    })
}

fn plain(code: StatusCode, message: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn error_response(err: LogError) -> Response {
    let code = match &err {
        LogError::InvalidName(_) | LogError::TaskRequired(_) => StatusCode::BAD_REQUEST,
        LogError::AllocNotFound(_) | LogError::TaskNotFound { .. } => StatusCode::NOT_FOUND,
        LogError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    plain(code, err.to_string())
}

async fn task_logs(
    State(alloc_root): State<Arc<PathBuf>>,
    Path(alloc_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let query = match parse_query(&params) {
        Ok(q) => q,
        Err(message) => return plain(StatusCode::BAD_REQUEST, message),
    };
    let opened = tokio::task::spawn_blocking(move || {
        let (dir, task) = logs::resolve(&alloc_root, &alloc_id, query.task.as_deref())?;
        Ok::<_, LogError>(LogReader::open(&dir, &task, query.ty, query.tail)?)
    })
    .await;
    let reader = match opened {
        Ok(Ok(reader)) => reader,
        Ok(Err(e)) => return error_response(e),
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading logs failed: {e}"),
            );
        }
    };
    let mut resp = Response::new(Body::from_stream(stream(reader, query.follow)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The reader's chunks; when following, waits for more until the client goes away or the
/// allocation's directory is removed.
fn stream(
    reader: LogReader,
    follow: bool,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    futures::stream::unfold(Some(reader), move |reader| async move {
        let mut reader = reader?;
        loop {
            let (back, read) = tokio::task::spawn_blocking(move || {
                let read = reader.read_chunk(CHUNK);
                let gone = matches!(read, Ok(None)) && !reader.dir_exists();
                (reader, read.map(|chunk| (chunk, gone)))
            })
            .await
            .ok()?;
            reader = back;
            match read {
                Ok((Some(chunk), _)) => return Some((Ok(chunk), Some(reader))),
                Ok((None, gone)) if follow && !gone => tokio::time::sleep(POLL_INTERVAL).await,
                Ok((None, _)) => return None,
                Err(e) => return Some((Err(e), None)),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn queries_parse_with_defaults() {
        assert_eq!(parse_query(&params(&[])).unwrap(), LogQuery::default());
        let q = parse_query(&params(&[
            ("task", "web"),
            ("type", "stderr"),
            ("follow", "true"),
            ("tail", "5"),
        ]))
        .unwrap();
        assert_eq!(
            q,
            LogQuery {
                task: Some("web".into()),
                ty: LogType::Stderr,
                follow: true,
                tail: Some(5),
            }
        );
        assert!(parse_query(&params(&[("type", "both")])).is_err());
        assert!(parse_query(&params(&[("follow", "yes")])).is_err());
        assert!(parse_query(&params(&[("tail", "-1")])).is_err());
    }

    async fn serve(root: PathBuf) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router(root)).await;
        });
        format!("http://{addr}")
    }

    async fn get(url: &str) -> (u16, String) {
        let (code, body) = raw_get(url).await;
        (code, String::from_utf8_lossy(&body).into_owned())
    }

    /// A minimal HTTP/1.0 GET (no client dependency in this crate).
    async fn raw_get(url: &str) -> (u16, Vec<u8>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap());
        let mut conn = tokio::net::TcpStream::connect(host).await.unwrap();
        conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf).await.unwrap();
        let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, buf[head_end + 4..].to_vec())
    }

    /// The uid of the allocation of the tests.
    const A1: &str = "0b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c";

    #[tokio::test]
    async fn logs_are_served_and_errors_are_plain_text() {
        let root = tempfile::tempdir().unwrap();
        let dir = logs::logs_dir(root.path(), A1).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("web.stdout.0"), "one\ntwo\n").unwrap();
        std::fs::write(dir.join("web.stdout.1"), "three\n").unwrap();
        std::fs::write(dir.join("web.stderr.0"), "oops\n").unwrap();
        let base = serve(root.path().to_path_buf()).await;
        let url = |q: &str| format!("{base}/v1/client/fs/logs/{A1}{q}");
        assert_eq!(get(&url("")).await, (200, "one\ntwo\nthree\n".into()));
        assert_eq!(
            get(&url("?task=web&type=stderr")).await,
            (200, "oops\n".into())
        );
        assert_eq!(
            get(&url("?task=web&tail=2")).await,
            (200, "two\nthree\n".into())
        );
        assert_eq!(get(&url("?type=both")).await.0, 400);
        assert_eq!(get(&url("?task=..")).await.0, 400);
        let (code, body) = get(&url("?task=db")).await;
        assert_eq!(code, 404);
        assert!(body.contains("task \"db\" not found"), "{body}");
        let other = "1b5f3c2e-8a4d-4f7e-9c1a-2d3e4f5a6b7c";
        assert_eq!(
            get(&format!("{base}/v1/client/fs/logs/{other}")).await.0,
            404
        );
        assert_eq!(
            get(&format!("{base}/v1/client/fs/logs/..%2Fetc")).await.0,
            400
        );
    }

    #[tokio::test]
    async fn names_that_leave_the_allocation_directory_read_nothing() {
        let root = tempfile::tempdir().unwrap();
        // Files a traversal would reach: next to the allocations, and above the root.
        let alloc_root = root.path().join("alloc");
        let dir = logs::logs_dir(&alloc_root, A1).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("web.stdout.0"), "mine\n").unwrap();
        let etc = root.path().join("etc");
        std::fs::create_dir_all(etc.join("alloc/logs")).unwrap();
        std::fs::write(etc.join("alloc/logs/x.stdout.0"), "secret\n").unwrap();
        std::fs::write(etc.join("etc.stdout.0"), "secret\n").unwrap();
        // An allocation directory whose name is no UUID is never one of the agent's.
        let not_uuid = logs::logs_dir(&alloc_root, A1)
            .unwrap()
            .to_string_lossy()
            .replace(A1, "a1");
        std::fs::create_dir_all(&not_uuid).unwrap();
        std::fs::write(format!("{not_uuid}/web.stdout.0"), "secret\n").unwrap();
        let base = serve(alloc_root.clone()).await;
        let logs = format!("{base}/v1/client/fs/logs");
        for url in [
            format!("{logs}/{A1}?task=../../etc"),
            format!("{logs}/{A1}?task=..%2F..%2Fetc"),
            format!("{logs}/{A1}?task=%2Fetc"),
            format!("{logs}/{A1}?task=.."),
            format!("{logs}/{A1}?task=web%00"),
            format!("{logs}/..%2Fetc?task=x"),
            format!("{logs}/..?task=x"),
            format!("{logs}/a1?task=web"),
        ] {
            let (code, body) = get(&url).await;
            assert!(code == 400 || code == 404, "{url}: {code} {body}");
            assert!(!body.contains("secret"), "{url}: {body}");
        }
        assert_eq!(
            get(&format!("{logs}/{A1}?task=web")).await,
            (200, "mine\n".into())
        );
    }

    #[tokio::test]
    async fn a_followed_log_streams_new_output_across_rotations() {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let root = tempfile::tempdir().unwrap();
        let dir = logs::logs_dir(root.path(), A1).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("web.stdout.0"), "first\n").unwrap();
        let base = serve(root.path().to_path_buf()).await;
        let host = base.strip_prefix("http://").unwrap().to_string();
        let mut conn = tokio::net::TcpStream::connect(&host).await.unwrap();
        conn.write_all(
            format!("GET /v1/client/fs/logs/{A1}?follow=true HTTP/1.0\r\nHost: {host}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut lines = BufReader::new(conn).lines();
        async fn next<R: tokio::io::AsyncBufRead + Unpin>(
            lines: &mut tokio::io::Lines<R>,
        ) -> String {
            tokio::time::timeout(Duration::from_secs(10), lines.next_line())
                .await
                .expect("a line in time")
                .unwrap()
                .expect("the stream goes on")
        }
        // Skip the response head.
        while !next(&mut lines).await.is_empty() {}
        assert_eq!(next(&mut lines).await, "first");
        std::fs::write(dir.join("web.stdout.1"), "second\n").unwrap();
        assert_eq!(next(&mut lines).await, "second");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("web.stdout.1"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"third\n").unwrap();
        assert_eq!(next(&mut lines).await, "third");
    }
}
