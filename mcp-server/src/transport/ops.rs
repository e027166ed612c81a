//! Operations endpoints: `/healthz` (the process is alive), `/readyz` (able to serve: the backend
//! is ready and the server is not draining) and `/metrics` (Prometheus text format).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(app): State<AppState>) -> Response {
    if app.lifecycle.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if !app.backend.is_ready() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the bridged server's handshake\n",
        )
            .into_response()
    } else {
        "ready\n".into_response()
    }
}

pub async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        app.metrics.render(),
    )
        .into_response()
}
