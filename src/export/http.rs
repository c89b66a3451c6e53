//! HTTP endpoints on a tokio runtime of their own thread: `GET /metrics` (Prometheus text
//! format 0.0.4), `GET /healthz` (liveness, `ok`). Everything else is 404.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

/// A function producing the current metrics text.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A running HTTP server. Dropping it does not stop it; call [`HttpServer::shutdown`].
pub struct HttpServer {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Bind `addr` and serve in a background thread. Errors: the address cannot be bound
    /// (in use, not local, permission).
    pub fn start(addr: SocketAddr, render: Render) -> std::io::Result<HttpServer> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
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
                    let r1 = render.clone();
                    let app = Router::new()
                        .route(
                            "/metrics",
                            get(move || {
                                let r = r1.clone();
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
                        .fallback(|| async { (StatusCode::NOT_FOUND, "not found; try /metrics\n") });
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                        let _ = rx.await;
                    });
                    if let Err(e) = serve.await {
                        tracing::error!(error = %e, "metrics server failed");
                    }
                });
            })?;
        Ok(HttpServer {
            local_addr,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Stop serving and wait for the server thread.
    pub fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
