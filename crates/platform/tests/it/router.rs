//! The complete router of a service, called with `tower::ServiceExt::oneshot` (no socket): the
//! JSON error shapes, 404 and 405, route-templated metric labels, readiness and draining, the
//! common endpoints.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{header, Method, Request, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use platform::config::ServerArgs;
use platform::Service;
use serde_json::Value;
use tower::ServiceExt;

const MAX_BODY_BYTES: usize = 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_millis(100);

fn service() -> Service {
    let mut args = ServerArgs::local("127.0.0.1:0".parse().unwrap());
    args.max_body_bytes = MAX_BODY_BYTES;
    args.request_timeout = REQUEST_TIMEOUT;
    Service::new(platform::service_info!("router-test"), args)
        .instant_route(
            "/items/{id}",
            get(|Path(id): Path<u32>| async move { format!("item {id}") }),
        )
        .route("/echo", post(|body: Bytes| async move { body }))
        .route(
            "/json",
            post(|Json(value): Json<Value>| async move { Json(value) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(REQUEST_TIMEOUT * 20).await;
                "late"
            }),
        )
        .instant_route(
            "/untimed",
            get(|| async {
                tokio::time::sleep(REQUEST_TIMEOUT * 3).await;
                "no timer on instant routes"
            }),
        )
        .instant_route("/panic", get(|| async { panic!("a handler bug") as &str }))
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, String, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

async fn get_path(router: &Router, path: &str) -> (StatusCode, String, String) {
    call(router, Request::get(path).body(Body::empty()).unwrap()).await
}

/// GET `path` and assert a JSON error of `status` and `code`.
async fn assert_get_error(router: &Router, path: &str, status: StatusCode, code: &str) {
    assert_json_error(&get_path(router, path).await, status, code);
}

/// Asserts a JSON error of `status` and `code`.
fn assert_json_error(answer: &(StatusCode, String, String), status: StatusCode, code: &str) {
    let (got, content_type, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(content_type, "application/json", "{body}");
    let error: Value = serde_json::from_str(body).expect("the error is JSON");
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["error"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn own_routes_answer() {
    let router = service().into_router();
    let (status, _, body) = get_path(&router, "/items/7").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "item 7"));
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_404_and_405() {
    let router = service().into_router();
    assert_get_error(&router, "/nope", StatusCode::NOT_FOUND, "not_found").await;
    let response = router
        .clone()
        .oneshot(Request::delete("/items/1").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.headers()[header::ALLOW], "GET,HEAD");
    let wrong_method = call(
        &router,
        Request::delete("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_json_error(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn framework_rejections_become_json_errors() {
    let router = service().into_router();
    let bad_path = get_path(&router, "/items/not-a-number").await;
    assert_json_error(&bad_path, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        bad_path.2.contains("Invalid URL"),
        "axum's reason is kept: {}",
        bad_path.2
    );

    for (content_type, body, status, code) in [
        (
            "text/plain",
            "{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            "application/json",
            "{\"unterminated",
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let request = Request::post("/json")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        assert_json_error(&call(&router, request).await, status, code);
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_declared_or_streamed() {
    let router = service().into_router();
    let declared = Request::post("/echo")
        .header(header::CONTENT_LENGTH, MAX_BODY_BYTES + 1)
        .body(Body::from(vec![b'a'; MAX_BODY_BYTES + 1]))
        .unwrap();
    assert_json_error(
        &call(&router, declared).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );
    // No length declared: the limit applies while the body arrives.
    let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(vec![b'a'; MAX_BODY_BYTES / 2]));
    let streamed = Request::post("/echo")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    assert_json_error(
        &call(&router, streamed).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    );
    let within = Request::post("/echo")
        .body(Body::from(vec![b'a'; MAX_BODY_BYTES]))
        .unwrap();
    assert_eq!(call(&router, within).await.0, StatusCode::OK);
}

#[tokio::test]
async fn routes_that_can_take_time_answer_408_after_the_request_timeout() {
    let router = service().into_router();
    assert_get_error(
        &router,
        "/slow",
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
    )
    .await;
    let (status, _, body) = get_path(&router, "/untimed").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "no timer on instant routes")
    );
}

#[tokio::test]
async fn a_panicking_handler_is_a_json_500() {
    let router = service().into_router();
    assert_get_error(
        &router,
        "/panic",
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
    )
    .await;
    assert_eq!(get_path(&router, "/items/1").await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_labelled_by_route_template_method_and_status() {
    let router = service().into_router();
    for path in ["/items/1", "/items/2", "/items/3"] {
        get_path(&router, path).await;
    }
    get_path(&router, "/nope").await;
    get_path(&router, "/also/nope").await;
    call(
        &router,
        Request::post("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    get_path(&router, "/panic").await;
    call(
        &router,
        Request::head("/items/1").body(Body::empty()).unwrap(),
    )
    .await;
    let brew = Method::from_bytes(b"BREW").unwrap();
    call(
        &router,
        Request::builder()
            .method(brew)
            .uri("/items/1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    let (status, content_type, page) = get_path(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(page.ends_with("# EOF\n"), "{page}");
    for series in [
        "http_requests_total{route=\"/items/{id}\",method=\"GET\",status=\"200\"} 3",
        "http_requests_total{route=\"/items/{id}\",method=\"HEAD\",status=\"200\"} 1",
        "http_requests_total{route=\"/items/{id}\",method=\"BREW\",status=\"405\"} 1",
        "http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 2",
        "http_requests_total{route=\"/healthz\",method=\"POST\",status=\"405\"} 1",
        "http_requests_total{route=\"/panic\",method=\"GET\",status=\"500\"} 1",
        "http_request_duration_seconds_count{route=\"/items/{id}\",method=\"GET\",status=\"200\"} 3",
        "http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/items/{id}\",method=\"GET\",status=\"200\"} 3",
        // The scrape counts itself.
        "http_requests_in_flight 1",
        "build_info{service=\"router-test\"",
    ] {
        assert!(
            page.lines().any(|line| line.starts_with(series)),
            "{series} in\n{page}"
        );
    }
    assert!(
        !page.contains("/items/1\""),
        "raw paths never become labels"
    );
}

/// A scraper that asks only for the classic text format gets it, with metadata naming the
/// samples (`http_requests_total`, not the OpenMetrics family `http_requests`) and no `# EOF`.
#[tokio::test]
async fn metrics_answer_the_classic_format_to_a_client_that_asks_only_for_it() {
    let router = service().into_router();
    get_path(&router, "/items/1").await;
    let request = Request::get("/metrics")
        .header(header::ACCEPT, "text/plain;version=0.0.4;q=1,*/*;q=0.1")
        .body(Body::empty())
        .unwrap();
    let (status, content_type, page) = call(&router, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    for line in [
        "# TYPE http_requests_total counter",
        "# HELP http_requests_total HTTP requests answered",
        "# TYPE http_request_duration_seconds histogram",
        "# TYPE http_requests_in_flight gauge",
        "http_requests_total{route=\"/items/{id}\",method=\"GET\",status=\"200\"} 1",
    ] {
        assert!(
            page.lines().any(|l| l.starts_with(line)),
            "{line} in\n{page}"
        );
    }
    assert!(!page.contains("# EOF") && !page.contains("# TYPE http_requests counter"));
}

#[tokio::test]
async fn readiness_follows_checks_and_draining() {
    let service = service();
    let readiness = service.readiness().clone();
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = failing.clone();
    readiness.add_check("store", move || {
        if flag.load(std::sync::atomic::Ordering::SeqCst) {
            Err("volume full".to_string())
        } else {
            Ok(())
        }
    });
    let router = service.into_router();

    let (status, content_type, body) = get_path(&router, "/readyz").await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "application/json")
    );
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["status"], "ready");
    assert_eq!(report["checks"]["store"], "ok");

    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, _, body) = get_path(&router, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["checks"]["store"], "volume full");

    failing.store(false, std::sync::atomic::Ordering::SeqCst);
    readiness.set_draining();
    let (status, _, body) = get_path(&router, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["status"], "not_ready");
    assert_eq!(report["checks"]["draining"], "shutting down");
    // Draining is for load balancers: liveness and the routes still answer.
    assert_eq!(get_path(&router, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get_path(&router, "/items/1").await.0, StatusCode::OK);
}

#[tokio::test]
async fn common_endpoints_describe_the_service() {
    let router = service().into_router();
    let (status, _, body) = get_path(&router, "/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));

    let (_, content_type, body) = get_path(&router, "/version").await;
    assert_eq!(content_type, "application/json");
    let version: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version["name"], "router-test");
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));

    let (_, content_type, body) = get_path(&router, "/openapi.json").await;
    assert_eq!(content_type, "application/json");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["info"]["title"], "router-test");
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/version",
        "/openapi.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
}
