//! Plain HTTP endpoints on the client port: `/health`, `/version`, `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::server::EtcdServer;
use crate::version::{API_VERSION, BUILD_VERSION, CLUSTER_VERSION};

/// Routes served next to gRPC on every client URL.
pub fn router(server: Arc<EtcdServer>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .with_state(server)
}

/// etcd's health check: healthy when there is a leader and a linearizable read succeeds.
async fn health(State(server): State<Arc<EtcdServer>>) -> impl IntoResponse {
    let ok = server.leader() != 0 && server.linearizable_read().await.is_ok();
    let body = Json(json!({ "health": if ok { "true" } else { "false" } }));
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body)
}

/// etcd's version document, plus our own build version beside it.
async fn version() -> impl IntoResponse {
    Json(json!({
        "etcdserver": API_VERSION,
        "etcdcluster": CLUSTER_VERSION,
        "etcd-rs": BUILD_VERSION,
    }))
}

/// Rendered on a blocking thread: the in-use size walks the whole database.
async fn metrics(State(server): State<Arc<EtcdServer>>) -> impl IntoResponse {
    let page = tokio::task::spawn_blocking(move || crate::metrics::render(&server))
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], page)
}
