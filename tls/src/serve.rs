//! The accept loop of the servers' API and the node agents' API: HTTP/1.1 and cleartext
//! HTTP/2 on one port, as `axum::serve` does, or both over TLS (each handshake in the
//! connection's own task, so a slow one holds up no other), plus what `axum::serve` cannot
//! set: a client must finish its TLS handshake and send a request's headers within
//! `header_read_timeout`, or its connection is closed (a connection that never finishes its
//! headers held a task and its buffers forever).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Serves one connection until it ends, or finishes its requests once `stop` changes.
async fn connection<I>(
    io: I,
    service: impl hyper::service::Service<
        Request<Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static,
    mut stop: watch::Receiver<()>,
    header_read_timeout: Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    // CONNECT, for WebSockets over HTTP/2.
    builder.http2().enable_connect_protocol();
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                break;
            }
            changed = stop.changed(), if !stopping => {
                let _ = changed;
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Serves `app` on `listener` (over TLS when `tls` has a certificate) until `shutdown` resolves; then stops accepting, asks every
/// connection to finish its requests, and waits for them.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<crate::Tls>>,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(());
    // Every connection holds a receiver; `closed()` resolves when the last one is dropped.
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "failed to accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Watch events and small answers go out at once, not after Nagle's delay.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|req: Request<Incoming>| req.map(Body::new)),
        );
        let stop = stop_rx.clone();
        let done = done_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls.as_ref().map(|tls| tls.server_config()) {
                None => connection(tcp, service, stop, header_read_timeout).await,
                // TLS without a certificate to serve (a CLI's material): never plain HTTP.
                Some(None) => tracing::warn!("no TLS certificate to serve: connection refused"),
                Some(Some(config)) => {
                    // The handshake, like the headers, must come within the header read time.
                    let accept = crate::TlsAcceptor::from(config).accept(tcp);
                    match tokio::time::timeout(header_read_timeout, accept).await {
                        Ok(Ok(stream)) => {
                            connection(stream, service, stop, header_read_timeout).await
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(done);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
}
