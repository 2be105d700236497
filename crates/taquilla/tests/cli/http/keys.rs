//! `taquilla keys` and `taquilla buyer-keys` against a running `taquilla serve` on the same
//! data directory: each change is in force at the server's next admin request, with no
//! restart, and survives one.

use std::path::Path;
use std::process::{Command, Output};

use reqwest::Method;
use serde_json::json;

use super::support::*;

/// Runs `taquilla <args>` to completion.
fn taquilla(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_taquilla"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run taquilla")
}

/// Runs `taquilla <args>`, asserts it succeeded, returns its stdout.
#[track_caller]
fn ok(args: &[&str], data_dir: &Path) -> String {
    let out = taquilla(args, data_dir);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "taquilla {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The value after `label:` on its line.
fn field(stdout: &str, label: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {label} in {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_api_keys_take_effect_on_a_running_server_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(dir.path(), &[]).await;
    let event = s.simple_sale(10, json!({})).await;
    let stats = format!("/v1/admin/events/{event}/stats");

    let created = ok(&["keys", "create", "--name", "door 1", "--scopes", "door"], dir.path());
    let (id, key) = (field(&created, "id:"), field(&created, "key:"));
    s.send(Method::GET, &stats, Some(&key), None, &[]).await.expect(200);
    let refused = s
        .send(Method::POST, "/v1/admin/events", Some(&key), Some(&json!({})), &[])
        .await;
    assert_eq!(refused.expect(403)["error"]["code"], "insufficient_scope");

    let listed = ok(&["keys", "list"], dir.path());
    assert!(listed.contains(&id) && listed.contains("door 1"), "{listed}");
    assert!(
        !listed.contains(key.split_once('.').unwrap().1),
        "never the secret: {listed}"
    );

    // Revoked while the server runs: refused by the very next request.
    let (id2, key2) = {
        let out = ok(
            &["keys", "create", "--name", "reports", "--scopes", "reporting,door"],
            dir.path(),
        );
        (field(&out, "id:"), field(&out, "key:"))
    };
    ok(&["keys", "revoke", &id], dir.path());
    let gone = s.send(Method::GET, &stats, Some(&key), None, &[]).await;
    assert_eq!(gone.expect(401)["error"]["message"], "this API key was revoked");
    s.send(Method::GET, "/v1/admin/feed", Some(&key2), None, &[])
        .await
        .expect(200);

    // The CLI refuses what the API refuses.
    for bad in [
        &["keys", "create", "--name", "x", "--scopes", "root"][..],
        &["keys", "create", "--name", "", "--scopes", "door"],
        &["keys", "revoke", "ak_0000000000000000"],
    ] {
        assert!(!taquilla(bad, dir.path()).status.success(), "{bad:?}");
    }

    // The bootstrap admin token keeps working beside the keys; everything survives a restart.
    s.kill();
    let s = Server::start_in(dir.path(), &[]).await;
    s.admin(Method::GET, &stats, None).await.expect(200);
    s.send(Method::GET, &stats, Some(&key), None, &[]).await.expect(401);
    s.send(Method::GET, &stats, Some(&key2), None, &[]).await.expect(200);
    let listed = s.admin(Method::GET, "/v1/admin/api-keys", None).await;
    let ids: Vec<&str> = listed.expect(200)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str(), id2.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_buyer_key_rotation_keeps_old_tokens_until_their_key_is_retired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start_in(dir.path(), &[]).await;
    let event = s.simple_sale(100, json!({})).await;
    let holds = format!("/v1/events/{event}/holds");
    let one = json!({"items": [{"ticket_type_id": 0, "quantity": 1}]});
    let issue = |buyer: &'static str| {
        let s = &s;
        async move {
            let r = s
                .admin(
                    Method::POST,
                    "/v1/admin/buyer-tokens",
                    Some(&json!({"buyer_id": buyer})),
                )
                .await;
            r.expect(201)["token"].as_str().unwrap().to_string()
        }
    };
    let v1 = buyer_token("ana");
    let v2_0 = issue("bea").await;
    assert!(v2_0.starts_with("v2.0."), "{v2_0}");

    let rotated = ok(&["buyer-keys", "rotate"], dir.path());
    assert_eq!(field(&rotated, "kid:"), "1");
    let secret = field(&rotated, "secret:");
    let v2_1 = issue("cy").await;
    assert!(v2_1.starts_with("v2.1."), "the new key signs at once: {v2_1}");
    let buyer = taquilla_domain::BuyerId::parse("dee").unwrap();
    let minted = taquilla_api::mint_buyer_token_with_kid(1, secret.as_bytes(), &buyer, 4_000_000_000);
    for token in [&v1, &v2_0, &v2_1, &minted] {
        s.buyer(token, Method::POST, &holds, Some(&one)).await.expect(201);
    }
    let listed = ok(&["buyer-keys", "list"], dir.path());
    assert!(
        listed.lines().any(|l| l.starts_with('1') && l.ends_with("yes")),
        "{listed}"
    );
    assert!(!listed.contains(&secret), "never the secret: {listed}");

    // Key 1 is the last active key once 0 is retired: the CLI refuses to retire it too.
    ok(&["buyer-keys", "retire", "0"], dir.path());
    assert!(!taquilla(&["buyer-keys", "retire", "1"], dir.path()).status.success());
    // Any admin request makes the server look at the file (the poll would within 1 s).
    s.admin(Method::GET, "/v1/admin/api-keys", None).await.expect(200);
    for token in [&v1, &v2_0] {
        let r = s.buyer(token, Method::POST, &holds, Some(&one)).await;
        assert_eq!(r.expect(401)["error"]["message"], "unknown or retired signing key");
    }
    s.buyer(&v2_1, Method::POST, &holds, Some(&one)).await.expect(201);

    s.kill();
    let s = Server::start_in(dir.path(), &[]).await;
    s.buyer(&v1, Method::POST, &holds, Some(&one)).await.expect(401);
    s.buyer(&minted, Method::POST, &holds, Some(&one)).await.expect(201);
}
