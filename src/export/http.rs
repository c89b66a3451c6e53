//! HTTP endpoints on a tokio runtime of their own thread: `GET /metrics` (Prometheus text
//! format 0.0.4), `GET /healthz` (liveness, `ok`). Everything else is 404.
//!
//! The server is built to survive hostile or broken clients: at most
//! [`MAX_CONNECTIONS`] connections at once (more are closed at accept), a request's headers
//! must arrive within [`HEADER_READ_TIMEOUT`], and a connection lives at most
//! [`CONNECTION_LIFETIME`]. Stopping it does not wait for open connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;

/// Most concurrent HTTP connections; further ones are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// Time a client has to send a request's headers (slow clients are cut off).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one (keep-alive) connection.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// A function producing the current metrics text.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A running HTTP server; call [`HttpServer::shutdown`] to stop it.
pub struct HttpServer {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn router(render: Render) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let r = render.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        r(),
                    )
                        .into_response()
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found; try /metrics\n") })
}

impl HttpServer {
    /// Bind `addr` and serve in a background thread. Errors: the address cannot be bound
    /// (in use, not local, permission).
    pub fn start(addr: SocketAddr, render: Render) -> std::io::Result<HttpServer> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let thread = std::thread::Builder::new()
            .name("fivewatch-http".into())
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(std_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "metrics listener failed");
                            return;
                        }
                    };
                    let app = router(render);
                    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
                    loop {
                        let accepted = tokio::select! {
                            _ = &mut rx => break,
                            a = listener.accept() => a,
                        };
                        let stream = match accepted {
                            Ok((s, _)) => s,
                            Err(e) => {
                                // E.g. out of file descriptors: back off instead of spinning.
                                tracing::warn!(error = %e, "metrics accept failed");
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                continue;
                            }
                        };
                        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                            continue; // too many connections: drop this one
                        };
                        let svc = TowerToHyperService::new(app.clone());
                        tokio::spawn(async move {
                            let conn = http1::Builder::new()
                                .timer(TokioTimer::new())
                                .header_read_timeout(HEADER_READ_TIMEOUT)
                                .serve_connection(TokioIo::new(stream), svc);
                            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
                            drop(slot);
                        });
                    }
                });
                // Dropping the runtime here cancels the connections still open.
            })?;
        Ok(HttpServer {
            local_addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stop accepting, close open connections and wait for the server thread.
    pub fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
