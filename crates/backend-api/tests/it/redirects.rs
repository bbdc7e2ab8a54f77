//! Redirects from the provider: followed within its own origin, never to another one, where the
//! key would go with the request.

use std::sync::atomic::Ordering;

use crate::common::*;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use test_support::metric;

/// A provider whose `/v1/logs` redirects to `target` and whose `/v1/moved` answers one line.
async fn redirecting(target: String) -> String {
    let app = Router::new()
        .route(
            "/v1/logs",
            get(move || {
                let target = target.clone();
                async move { Redirect::temporary(&target).into_response() }
            }),
        )
        .route(
            "/v1/moved",
            get(|| async { (StatusCode::OK, "{\"seq\":0}\n") }),
        );
    let addr = serve(app).await;
    format!("http://{addr}/v1/logs")
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_a_502_and_never_followed() {
    // Another origin that counts the requests reaching it (its answer does not matter).
    let (elsewhere, reached) = failing_provider(StatusCode::OK).await;
    let provider = redirecting(elsewhere).await;
    let backend = start_backend(config(Some(provider), Some(KEY))).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body = json(response).await;
    assert_eq!(body["code"], "provider_redirect_refused", "{body}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the other origin got no request"
    );
    let metrics = metrics_page(&backend.base).await;
    assert_eq!(
        metric(
            &metrics,
            "backend_upstream_requests_total{outcome=\"redirect_refused\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_redirect_within_the_providers_origin_is_followed() {
    let provider = redirecting("/v1/moved".to_string()).await;
    let backend = start_backend(config(Some(provider), Some(KEY))).await;
    let response = reqwest::get(format!("{}/download_external_logs", backend.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "{\"seq\":0}\n");
}
