//! Clients that hold a connection without finishing a request cost the server a bounded time.

use caravan_schemas::limits::HEADER_READ_TIMEOUT;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_that_never_finish_are_cut_off() {
    let server = support::start().await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut tcp = TcpStream::connect(&addr).await.expect("connect");
    // Half a request: the blank line that ends the headers never comes.
    tcp.write_all(b"GET /readyz HTTP/1.1\r\nHost: caravan\r\nX-Slow: 1\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    // The server closes the connection once the header read timeout passed (it may answer
    // 408 first); a server without the timeout keeps it open and this read never ends.
    let read = tokio::time::timeout(HEADER_READ_TIMEOUT * 3, tcp.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the connection was still open {:?} after a half-sent request",
        HEADER_READ_TIMEOUT * 3
    );
    // Meanwhile, and after, the server answers others.
    let resp = reqwest::get(server.url("/readyz")).await.expect("readyz");
    assert_eq!(resp.status(), 200);
}
