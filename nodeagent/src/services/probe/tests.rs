use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

#[test]
fn http_answers_map_to_statuses() {
    assert_eq!(http_status(200, None), CheckStatus::Passing);
    assert_eq!(http_status(299, None), CheckStatus::Passing);
    assert_eq!(http_status(301, None), CheckStatus::Critical);
    assert_eq!(http_status(429, None), CheckStatus::Warning);
    assert_eq!(http_status(500, None), CheckStatus::Critical);
    assert_eq!(http_status(204, Some(204)), CheckStatus::Passing);
    assert_eq!(http_status(200, Some(204)), CheckStatus::Critical);
    assert_eq!(http_status(503, Some(503)), CheckStatus::Passing);
    assert_eq!(http_status(429, Some(200)), CheckStatus::Warning);
}

#[test]
fn outputs_are_cut_on_a_character_boundary() {
    assert_eq!(truncate("abc".into(), 5), "abc");
    assert_eq!(truncate("abcdef".into(), 3), "abc");
    assert_eq!(truncate("aé".into(), 2), "a", "é is two bytes");
    assert_eq!(
        Outcome::new(CheckStatus::Passing, "x".repeat(10_000))
            .output
            .len(),
        MAX_OUTPUT
    );
    assert_eq!(host_port("::1", 80), "[::1]:80");
    assert_eq!(host_port("10.0.0.1", 80), "10.0.0.1:80");
}

/// A server answering every connection with `answer`, keeping each request's head.
async fn server(answer: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            keep.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).into_owned());
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (port, seen)
}

fn request<'a>(port: u16, headers: &'a [(String, String)]) -> HttpRequest<'a> {
    HttpRequest {
        address: "127.0.0.1",
        port: u32::from(port),
        path: "/health?full=1",
        method: "GET",
        headers,
        expected_status: None,
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn an_http_check_sends_its_request_and_reads_the_answer() {
    let (port, seen) =
        server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
    let headers = vec![("X-Probe".to_string(), "yes".to_string())];
    let outcome = http(request(port, &headers)).await;
    assert_eq!(outcome.status, CheckStatus::Passing, "{outcome:?}");
    assert_eq!(
        outcome.output,
        format!("HTTP GET http://127.0.0.1:{port}/health?full=1: 200 OK Output: ok")
    );
    let head = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        head.starts_with("get /health?full=1 http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("x-probe: yes"), "{head}");
    assert!(head.contains(&format!("host: 127.0.0.1:{port}")), "{head}");
}

#[tokio::test]
async fn http_warnings_failures_and_expected_statuses() {
    let (busy, _) = server("HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n").await;
    let outcome = http(request(busy, &[])).await;
    assert_eq!(outcome.status, CheckStatus::Warning, "{outcome:?}");
    let (broken, _) =
        server("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nboom").await;
    let outcome = http(request(broken, &[])).await;
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert!(
        outcome
            .output
            .ends_with("500 Internal Server Error Output: boom"),
        "{outcome:?}"
    );
    let mut expecting = request(broken, &[]);
    expecting.expected_status = Some(500);
    expecting.method = "HEAD";
    assert_eq!(http(expecting).await.status, CheckStatus::Passing);
}

#[tokio::test]
async fn http_checks_without_an_answer_are_critical() {
    // Nobody listens.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let outcome = http(request(port, &[])).await;
    assert_eq!(outcome.status, CheckStatus::Critical);
    // Accepted, never answered.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut slow = request(port, &[]);
    slow.timeout = Duration::from_millis(200);
    let outcome = http(slow).await;
    assert_eq!(outcome.status, CheckStatus::Critical);
    assert!(
        outcome.output.contains("timed out after 200ms"),
        "{outcome:?}"
    );
    drop(silent);
}

#[tokio::test]
async fn tcp_checks_pass_on_a_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = u32::from(listener.local_addr().unwrap().port());
    let outcome = tcp("127.0.0.1", port, Duration::from_secs(1)).await;
    assert_eq!(outcome.status, CheckStatus::Passing);
    assert_eq!(
        outcome.output,
        format!("TCP connect 127.0.0.1:{port}: Success")
    );
    drop(listener);
    let outcome = tcp("127.0.0.1", port, Duration::from_secs(1)).await;
    assert_eq!(outcome.status, CheckStatus::Critical, "{outcome:?}");
}
