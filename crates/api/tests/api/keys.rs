//! Admin API keys and buyer signing keys over real HTTP: every admin route takes exactly the
//! scopes its OpenAPI operation lists; keys are created, listed and revoked without a restart
//! (through the API and, as the CLI does, through the keys file), survive restarts, and are
//! bounded; buyer-key rotation keeps old tokens valid, signs new ones with the new key id,
//! and retiring a key refuses its tokens.

use reqwest::Method;
use serde_json::{Value, json};
use taquilla_api::keys::{api_keys, buyer};
use taquilla_domain::Timestamp;

use crate::helpers::*;

/// A request for `path` with every `{param}` filled with an id that names nothing.
fn concrete(path: &str) -> String {
    path.replace("{event_id}", "evt_999")
        .replace("{order_id}", "ord_999_1")
        .replace("{key_id}", "ak_0000000000000000")
}

/// (method, path, scopes listed by `security`) of every admin operation in the document.
fn admin_operations(doc: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let Some(security) = op["security"].as_array() else {
                continue;
            };
            let Some(scopes) = security.iter().find_map(|s| s["admin"].as_array()) else {
                continue;
            };
            let scopes = scopes
                .iter()
                .map(|s| s.as_str().expect("a scope").to_string())
                .collect();
            out.push((method.to_uppercase(), path.clone(), scopes));
        }
    }
    out
}

#[tokio::test]
async fn every_admin_route_takes_the_scopes_it_documents() {
    scopes(Codes::default()).await;
}

pub async fn scopes(codes: Codes) {
    let app = spawn_app(AppOptions::default().codes(&codes)).await;
    let doc = app.openapi().await.expect(200).clone();
    let ops = admin_operations(&doc);
    assert!(ops.len() >= 17, "every admin route declares its scopes: {ops:?}");
    let mut keys = Vec::new();
    for scope in ["admin", "door", "reporting"] {
        keys.push((scope, app.api_key(&[scope]).await.1));
    }
    for (method, path, scopes) in &ops {
        assert!(
            scopes.contains(&"admin".to_string()),
            "{method} {path}: admin may do everything"
        );
        let method = Method::from_bytes(method.as_bytes()).expect("a method");
        // An empty object: refused as invalid by the routes that take a body, after auth.
        let body = (method == Method::POST).then(|| json!({}));
        for (scope, key) in &keys {
            let r = app
                .send(method.clone(), &concrete(path), Some(key), body.as_ref(), &[])
                .await;
            if scopes.iter().any(|s| s == scope) {
                assert!(
                    ![401, 403].contains(&r.status) && r.status < 500,
                    "{scope} may call {method} {path}: {}",
                    r.text
                );
            } else {
                let e = r.expect_error(403, "insufficient_scope");
                let mut required: Vec<String> =
                    serde_json::from_value(e["details"]["required_scopes"].clone()).unwrap();
                let mut documented = scopes.clone();
                required.sort();
                documented.sort();
                assert_eq!(required, documented, "{method} {path}");
            }
        }
    }
}

/// The door checks a real ticket in and reads the stats; it cannot read the order, refund
/// it or mint buyer tokens. Reporting reads, and cannot check in.
#[tokio::test]
async fn door_and_reporting_keys_do_their_jobs_over_a_real_sale() {
    let app = spawn_app(AppOptions::default().test_payments()).await;
    let event = app.simple_sale(10, json!({})).await;
    let order = app.buy(&app.buyer_token("ana"), &event, 2).await;
    let order_id = order["id"].as_str().expect("order id").to_string();
    let codes = ticket_codes(&order);
    let (_, door) = app.api_key(&["door"]).await;
    let (_, reporting) = app.api_key(&["reporting"]).await;
    let checkin = format!("/v1/admin/events/{event}/checkins");
    let stats = format!("/v1/admin/events/{event}/stats");
    let admin_order = format!("/v1/admin/orders/{order_id}");
    let refund = format!("/v1/admin/orders/{order_id}/refund");

    let body = json!({ "ticket_code": codes[0] });
    app.send(Method::POST, &checkin, Some(&reporting), Some(&body), &[])
        .await
        .expect_error(403, "insufficient_scope");
    app.send(Method::POST, &checkin, Some(&door), Some(&body), &[])
        .await
        .expect(200);
    let s = app.send(Method::GET, &stats, Some(&door), None, &[]).await;
    assert_eq!(s.expect(200)["tickets_checked_in"], 1);
    app.send(Method::GET, &admin_order, Some(&door), None, &[])
        .await
        .expect_error(403, "insufficient_scope");
    app.send(Method::POST, &refund, Some(&door), Some(&json!({})), &[])
        .await
        .expect_error(403, "insufficient_scope");
    let token = json!({ "buyer_id": "mallory" });
    app.send(Method::POST, "/v1/admin/buyer-tokens", Some(&door), Some(&token), &[])
        .await
        .expect_error(403, "insufficient_scope");

    let read = app.send(Method::GET, &admin_order, Some(&reporting), None, &[]).await;
    assert_eq!(read.expect(200)["order"]["state"], "paid");
    app.send(Method::GET, "/v1/admin/feed", Some(&reporting), None, &[])
        .await
        .expect(200);
    app.send(Method::POST, &refund, Some(&reporting), Some(&json!({})), &[])
        .await
        .expect_error(403, "insufficient_scope");
    // Nothing the refused calls asked for happened.
    let after = app.admin_order(&order_id).await;
    assert_eq!(after.expect(200)["order"]["state"], "paid");
    assert_eq!(app.stats(&event).await["tickets_checked_in"], 1);
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_without_a_restart() {
    let mut app = spawn_app(AppOptions::default()).await;
    let created = app.create_api_key("door scanner 3", &["door", "door"]).await;
    let body = created.expect(201).clone();
    let (id, key) = (
        body["id"].as_str().unwrap().to_string(),
        body["key"].as_str().unwrap().to_string(),
    );
    assert_eq!(body["scopes"], json!(["door"]));
    assert!(key.starts_with(&format!("{id}.")), "{key}");
    let stats = "/v1/admin/events/evt_999/stats";
    app.send(Method::GET, stats, Some(&key), None, &[])
        .await
        .expect_error(404, "not_found");

    // Listed without the key or its hash.
    let listed = app.list_api_keys().await;
    let keys = listed.expect(200)["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["id"], id.as_str());
    assert_eq!(keys[0]["name"], "door scanner 3");
    assert!(
        keys[0].get("key").is_none() && keys[0].get("sha256").is_none(),
        "{}",
        keys[0]
    );
    assert!(
        !listed.text.contains(key.split_once('.').unwrap().1),
        "the secret is never listed"
    );
    let on_disk = std::fs::read_to_string(app.data_dir().join("keys.json")).unwrap();
    assert!(
        on_disk.contains(&id) && !on_disk.contains(key.split_once('.').unwrap().1),
        "stored hashed"
    );

    // Revoked: refused by the very next request, revoking again answers the same.
    let revoked = app.revoke_api_key(&id).await.expect(200).clone();
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let e = app.send(Method::GET, stats, Some(&key), None, &[]).await;
    assert_eq!(
        e.expect_error(401, "unauthorized")["message"],
        "this API key was revoked"
    );
    assert_eq!(
        app.revoke_api_key(&id).await.expect(200)["revoked_at"],
        revoked["revoked_at"]
    );
    app.revoke_api_key("ak_0000000000000000")
        .await
        .expect_error(404, "not_found");
    app.revoke_api_key("nope").await.expect_error(404, "not_found");

    // A forged secret for a real id, and junk, are 401 too.
    let (id2, key2) = app.api_key(&["reporting"]).await;
    let forged = format!("{id2}.{}", "A".repeat(43));
    app.send(Method::GET, stats, Some(&forged), None, &[])
        .await
        .expect_error(401, "unauthorized");

    // Bad requests.
    for body in [
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "scopes": ["root"]}),
        json!({"name": "", "scopes": ["door"]}),
        json!({"name": " ", "scopes": ["door"]}),
        json!({"name": "x\u{7}", "scopes": ["door"]}),
        json!({"name": "x".repeat(201), "scopes": ["door"]}),
        json!({"name": "x", "scopes": ["door", "door", "door", "door"]}),
        json!({"name": "x"}),
    ] {
        let r = app
            .send(Method::POST, "/v1/admin/api-keys", Some(ADMIN_TOKEN), Some(&body), &[])
            .await;
        r.expect_error(422, "invalid");
    }

    // Durable: after a restart the revoked key is still refused, the other still works.
    app.restart().await;
    app.send(Method::GET, stats, Some(&key), None, &[])
        .await
        .expect_error(401, "unauthorized");
    app.send(Method::GET, stats, Some(&key2), None, &[])
        .await
        .expect_error(404, "not_found");
}

/// What `taquilla keys create|revoke` does (the same functions, on the data directory) is in
/// force at the next request of the running server: no restart, no wait.
#[tokio::test]
async fn a_key_changed_in_the_file_takes_effect_at_the_next_request() {
    let app = spawn_app(AppOptions::default()).await;
    let feed = "/v1/admin/feed";
    let (record, key) = api_keys::create(
        app.data_dir(),
        "cli",
        &[taquilla_api::keys::Scope::Reporting],
        Timestamp(0),
    )
    .unwrap();
    app.send(Method::GET, feed, Some(&key), None, &[]).await.expect(200);
    api_keys::revoke(app.data_dir(), &record.id, Timestamp(1)).unwrap();
    app.send(Method::GET, feed, Some(&key), None, &[])
        .await
        .expect_error(401, "unauthorized");
    // And a key created through the API is in the file for the CLI to list.
    let (id, _) = app.api_key(&["admin"]).await;
    let file = taquilla_api::keys::file::read(app.data_dir()).unwrap();
    assert!(file.api_keys.iter().any(|k| k.id == id));
}

#[tokio::test]
async fn a_key_past_the_limit_is_too_many_keys() {
    too_many_keys(Codes::default()).await;
}

pub async fn too_many_keys(codes: Codes) {
    let app = spawn_app(AppOptions::default().codes(&codes)).await;
    let mut first = None;
    for _ in 0..taquilla_api::limits::API_KEYS_ACTIVE_MAX {
        let (id, _) = app.api_key(&["door"]).await;
        first.get_or_insert(id);
    }
    app.create_api_key("one too many", &["door"])
        .await
        .expect_error(422, "too_many_keys");
    app.revoke_api_key(&first.unwrap()).await.expect(200);
    app.create_api_key("room again", &["door"]).await.expect(201);
}

/// Rotation end to end: tokens of the old key keep working, new tokens carry the new key id
/// (and verify), an integrator's token minted with the new secret works, and a retired key's
/// tokens are refused.
#[tokio::test]
async fn buyer_key_rotation_keeps_old_tokens_and_retiring_refuses_them() {
    let app = spawn_app(AppOptions::default()).await;
    let event = app.simple_sale(100, json!({})).await;
    let hold = |token: String| {
        let app = &app;
        let event = event.clone();
        async move { app.place_hold(&token, &event, &items(0, 1), None).await }
    };
    let v1 = app.buyer_token("ana");
    let issued = app.issue_buyer_token("ana", None).await.expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(issued.starts_with("v2.0."), "key 0 signs before any rotation: {issued}");

    // `taquilla buyer-keys rotate`, while the server runs.
    let (kid, secret) = buyer::rotate(app.data_dir(), Timestamp(0)).unwrap();
    assert_eq!(kid, 1);
    let new = app.issue_buyer_token("bob", None).await.expect(201)["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(new.starts_with("v2.1."), "the new key signs: {new}");
    hold(new).await.expect(201);
    hold(v1.clone()).await.expect(201);
    hold(issued.clone()).await.expect(201);
    let buyer_id = taquilla_domain::BuyerId::parse("cy").unwrap();
    let minted = taquilla_api::mint_buyer_token_with_kid(1, secret.as_bytes(), &buyer_id, app.now_secs() + 600);
    hold(minted.clone()).await.expect(201);

    // `taquilla buyer-keys retire 0`: seen by the next admin request (or the poll within 1 s).
    buyer::retire(app.data_dir(), 0, Timestamp(0)).unwrap();
    app.list_api_keys().await.expect(200);
    for old in [v1, issued] {
        let r = hold(old).await;
        assert_eq!(
            r.expect_error(401, "unauthorized")["message"],
            "unknown or retired signing key"
        );
    }
    hold(minted).await.expect(201);
    // A key id that never existed.
    let unknown = taquilla_api::mint_buyer_token_with_kid(9, secret.as_bytes(), &buyer_id, app.now_secs() + 600);
    hold(unknown).await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn admin_requests_are_counted_by_key_id() {
    let app = spawn_app(AppOptions::default().metrics()).await;
    let (id, key) = app.api_key(&["reporting"]).await;
    app.send(Method::GET, "/v1/admin/feed", Some(&key), None, &[])
        .await
        .expect(200);
    app.send(Method::POST, "/v1/admin/events", Some(&key), Some(&json!({})), &[])
        .await
        .expect_error(403, "insufficient_scope");
    let metrics = app.metrics().await;
    let text = &metrics.text;
    for outcome in ["allowed", "insufficient_scope"] {
        let series = format!("taquilla_admin_requests_total{{key_id=\"{id}\",outcome=\"{outcome}\"}} 1");
        assert!(text.contains(&series), "no {series} in\n{text}");
    }
    assert!(!text.contains(key.split_once('.').unwrap().1), "never the secret");
}
