//! Operations: liveness and readiness (`503 unavailable` until recovery has finished),
//! metrics, and the OpenAPI document (OpenAPI 3, no dangling `$ref`, and every documented
//! operation answered by a handler of its own).

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app(AppOptions::default().test_payments().metrics()).await;
    assert_eq!(app.readyz().await.expect(200)["status"], "ready");
    assert_eq!(app.healthz().await.expect(200)["status"], "ok");

    // Something durable happened, so the fsync histogram has samples.
    let id = app.simple_sale(10, json!({})).await;
    app.place_hold(&app.buyer_token("ana"), &id, &items(0, 1), None)
        .await
        .expect(201);
    let m = app.metrics().await;
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").is_some_and(|c| c.starts_with("text/plain")));
    for needle in [
        "taquilla_http_requests_total{",
        "route=\"/v1/events/{event_id}/holds\"",
        "status=\"201\"",
        "taquilla_http_request_duration_seconds_bucket",
        "taquilla_fsync_seconds_bucket",
        "taquilla_fsync_seconds_count",
        "taquilla_batch_commands",
        "taquilla_queue_depth",
        "taquilla_holds{state=\"active\"} 1",
    ] {
        assert!(m.text.contains(needle), "/metrics lacks {needle}:\n{}", m.text);
    }
}

#[tokio::test]
async fn not_ready_answers_503_until_recovery_has_finished() {
    not_ready_until_recovered(Codes::default()).await;
}

/// The real router over an application state without an engine: what every client sees
/// while recovery replays the log.
pub async fn not_ready_until_recovered(codes: Codes) {
    let app = spawn_unready_app(&codes).await;
    assert_eq!(app.healthz().await.expect(200)["status"], "ok", "alive at once");
    let ana = app.buyer_token("ana");
    for r in [
        app.readyz().await,
        app.list_sales().await,
        app.create_event(&json!({"name": "Early", "currency": "EUR"})).await,
        app.get_hold(&ana, "hld_1_1").await,
    ] {
        r.expect_error(503, "unavailable");
        assert_eq!(r.header("retry-after"), Some("1"), "{}", r.text);
    }

    let engine = app.recover().await;
    assert_eq!(app.readyz().await.expect(200)["status"], "ready");
    assert_eq!(app.list_sales().await.expect(200)["events"], json!([]));
    let id = app.simple_sale(5, json!({})).await;
    app.place_hold(&ana, &id, &items(0, 1), None).await.expect(201);
    assert_eq!(engine.sales().len(), 1, "the engine handed over is the one serving");
}

#[tokio::test]
async fn the_openapi_document_is_complete_and_every_operation_has_a_handler() {
    let app = spawn_app(AppOptions::default().test_payments()).await;
    let doc = app.openapi().await;
    let doc = doc.expect(200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    // Every schema a path refers to is defined.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for r in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = r.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }

    // The fallbacks, as the check below recognises them: it can tell a route from none.
    let fallback = app.send(Method::GET, "/v1/no-such-route", None, None, &[]).await;
    assert_eq!(fallback.expect_error(404, "not_found")["message"], "no such route");
    app.send(Method::DELETE, "/healthz", None, None, &[])
        .await
        .expect_error(405, "method_not_allowed");

    // Every documented operation is served by a handler: with placeholder ids (of nothing
    // that exists) it answers, but never with the router's fallbacks.
    let routes = app.documented_routes().await;
    assert!(routes.len() >= 24, "the document has only {routes:?}");
    let ana = app.buyer_token("ana");
    for (method, template) in &routes {
        let path = fill_placeholders(template);
        let token = if path.starts_with("/v1/admin/") {
            ADMIN_TOKEN
        } else {
            &ana
        };
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let body = (m == Method::POST).then(|| json!({}));
        let r = app.send(m, &path, Some(token), body.as_ref(), &[]).await;
        assert!(r.status < 500, "{method} {path}: {} {}", r.status, r.text);
        assert_ne!(
            r.status, 405,
            "{method} {path} is documented but not routed: {}",
            r.text
        );
        assert!(
            !(r.status == 404 && r.json["error"]["message"] == "no such route"),
            "{method} {path} is documented but not routed: {}",
            r.text
        );
    }
}

/// The template with every `{…}` path parameter replaced by a well-formed id.
fn fill_placeholders(template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{event_id}" => "evt_1",
            "{hold_id}" => "hld_1_1",
            "{order_id}" => "ord_1_1",
            "{key_id}" => "ak_0000000000000000",
            "{ticket_type_id}" | "{quota_id}" => "0",
            s if s.starts_with('{') => panic!("a new path parameter {s}: give it a placeholder here"),
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}
