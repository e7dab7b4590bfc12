//! The agent's side of the executor socket (async, tokio).

use std::io;
use std::path::Path;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::protocol::{Request, Response};

/// Sends one request and reads its answer. A `wait` request is answered when the task exits.
pub async fn request(socket: &Path, request: &Request) -> io::Result<Response> {
    let (_dir, path) = super::protocol::reachable_socket_path(socket)?;
    let stream = UnixStream::connect(&path).await?;
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
    line.push(b'\n');
    write.write_all(&line).await?;
    write.flush().await?;
    let mut answer = String::new();
    if BufReader::new(read).read_line(&mut answer).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the executor closed the connection",
        ));
    }
    serde_json::from_str(&answer).map_err(io::Error::other)
}
