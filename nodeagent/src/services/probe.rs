//! One run of an `http` or `tcp` check, and what a run's answer means (pure).
//!
//! - `http`: one request on a new connection (`Connection: close`) to
//!   `http://<address>:<port><path>` with the check's method and headers; the expected status
//!   (any 2xx without one) passes, 429 is a warning, any other status, a connection error or
//!   no answer within the timeout is critical. The output is the status line and the start of
//!   the body.
//! - `tcp`: a connection within the timeout passes, anything else is critical.
//!
//! Outputs are cut to [`MAX_OUTPUT`] bytes.

use std::time::Duration;

use caravan_schemas::job::CheckStatus;
use hyper::body::Body;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The most bytes of output kept from one run.
pub const MAX_OUTPUT: usize = 4096;

/// What one run of a check said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub status: CheckStatus,
    pub output: String,
}

impl Outcome {
    pub fn new(status: CheckStatus, output: impl Into<String>) -> Outcome {
        Outcome {
            status,
            output: truncate(output.into(), MAX_OUTPUT),
        }
    }
}

/// The status an HTTP answer `code` gives: `expected` (any 2xx when `None`) passes, 429 warns,
/// anything else is critical.
pub fn http_status(code: u16, expected: Option<u32>) -> CheckStatus {
    let passes = match expected {
        Some(expected) => u32::from(code) == expected,
        None => (200..300).contains(&code),
    };
    if passes {
        CheckStatus::Passing
    } else if code == 429 {
        CheckStatus::Warning
    } else {
        CheckStatus::Critical
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `address:port`, `[address]:port` for an IPv6 address.
pub fn host_port(address: &str, port: u32) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// A TCP check's run.
pub async fn tcp(address: &str, port: u32, timeout: Duration) -> Outcome {
    let target = host_port(address, port);
    match tokio::time::timeout(timeout, TcpStream::connect(target.as_str())).await {
        Ok(Ok(_)) => Outcome::new(
            CheckStatus::Passing,
            format!("TCP connect {target}: Success"),
        ),
        Ok(Err(e)) => Outcome::new(CheckStatus::Critical, format!("TCP connect {target}: {e}")),
        Err(_) => Outcome::new(
            CheckStatus::Critical,
            format!(
                "TCP connect {target}: timed out after {}",
                humantime::format_duration(timeout)
            ),
        ),
    }
}

/// What an HTTP check asks.
#[derive(Clone, Copy, Debug)]
pub struct HttpRequest<'a> {
    pub address: &'a str,
    pub port: u32,
    pub path: &'a str,
    pub method: &'a str,
    pub headers: &'a [(String, String)],
    pub expected_status: Option<u32>,
    pub timeout: Duration,
}

/// An HTTP check's run.
pub async fn http(request: HttpRequest<'_>) -> Outcome {
    let host = host_port(request.address, request.port);
    let url = format!("http://{host}{}", request.path);
    let said = format!("HTTP {} {url}", request.method);
    match tokio::time::timeout(request.timeout, exchange(&request, &host)).await {
        Ok(Ok((code, reason, body))) => {
            let status = http_status(code, request.expected_status);
            let mut output = format!("{said}: {code} {reason}");
            if !body.is_empty() {
                output.push_str(" Output: ");
                output.push_str(&body);
            }
            Outcome::new(status, output)
        }
        Ok(Err(e)) => Outcome::new(CheckStatus::Critical, format!("{said}: {e}")),
        Err(_) => Outcome::new(
            CheckStatus::Critical,
            format!(
                "{said}: timed out after {}",
                humantime::format_duration(request.timeout)
            ),
        ),
    }
}

/// Ends a spawned task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends the request; the answer's code, reason and the start of its body.
async fn exchange(request: &HttpRequest<'_>, host: &str) -> Result<(u16, String, String), String> {
    let method = hyper::Method::from_bytes(request.method.as_bytes())
        .map_err(|e| format!("invalid method: {e}"))?;
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(request.path)
        .header(hyper::header::USER_AGENT, "Caravan Health Check")
        .header(hyper::header::CONNECTION, "close");
    if !request
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("host"))
    {
        builder = builder.header(hyper::header::HOST, host);
    }
    for (name, value) in request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let req = builder
        .body(String::new())
        .map_err(|e| format!("invalid request: {e}"))?;
    let stream = TcpStream::connect(host).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    let _conn = AbortOnDrop(tokio::spawn(conn).abort_handle());
    let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let code = response.status();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while bytes.len() < MAX_OUTPUT {
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            // The status is what counts; a body cut short is still an answer.
            Some(Err(_)) | None => break,
        }
    }
    bytes.truncate(MAX_OUTPUT);
    let reason = code.canonical_reason().unwrap_or_default().to_string();
    Ok((
        code.as_u16(),
        reason,
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

#[cfg(test)]
#[path = "probe/tests.rs"]
mod tests;
