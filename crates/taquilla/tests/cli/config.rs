//! `taquilla serve` settings: flags win over the environment, which wins over the config
//! file, which wins over the defaults. Checked on the real binary through what each setting
//! visibly does.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const FILE_ADMIN: &str = "file-admin-token-0123456789";
const ENV_ADMIN: &str = "env-admin-token-0123456789";
const FLAG_ADMIN: &str = "flag-admin-token-0123456789";
const FILE_SECRET: &str = "file-buyer-secret-0123456789";

#[tokio::test]
async fn flags_beat_environment_beats_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let from_file = tmp.path().join("from-file");
    let from_env = tmp.path().join("from-env");
    let config = tmp.path().join("taquilla.toml");
    // The file's listen address is not on this machine: if it won, the server could not start.
    std::fs::write(
        &config,
        format!(
            "listen = \"192.0.2.1:80\"\ndata_dir = {:?}\nadmin_token = \"{FILE_ADMIN}\"\nbuyer_secret = \"{FILE_SECRET}\"\nbody_limit_bytes = 1024\n",
            from_file.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_taquilla"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0", "--admin-token", FLAG_ADMIN])
        .env("TAQUILLA_DATA_DIR", &from_env)
        .env("TAQUILLA_ADMIN_TOKEN", ENV_ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("taquilla listening on ")
        .unwrap_or_else(|| panic!("banner {first:?}"))
        .to_string();
    let http = reqwest::Client::new();
    let token_request = |token: &str| {
        http.post(format!("{url}/v1/admin/buyer-tokens"))
            .bearer_auth(token)
            .json(&serde_json::json!({"buyer_id": "ana"}))
            .send()
    };

    // Flag over environment over file (the others are no admin token of this server: 401).
    assert_eq!(token_request(FLAG_ADMIN).await.unwrap().status(), 201);
    assert_eq!(token_request(ENV_ADMIN).await.unwrap().status(), 401);
    assert_eq!(token_request(FILE_ADMIN).await.unwrap().status(), 401);
    // Environment over file.
    assert!(from_env.join("log").is_dir(), "the environment's data dir is used");
    assert!(!from_file.exists(), "the file's data dir is not");
    // File over default: 1 KiB body limit, and its buyer secret signs tokens.
    let big = http
        .post(format!("{url}/v1/admin/buyer-tokens"))
        .bearer_auth(FLAG_ADMIN)
        .header("content-type", "application/json")
        .body(format!("{{\"buyer_id\": \"{}\"}}", "x".repeat(2048)))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let buyer = taquilla_domain::BuyerId::parse("ana").unwrap();
    let good = taquilla_api::mint_buyer_token(FILE_SECRET.as_bytes(), &buyer, 4_000_000_000);
    let bad = taquilla_api::mint_buyer_token(b"some-other-secret-0123", &buyer, 4_000_000_000);
    let hold = |token: String| http.get(format!("{url}/v1/holds/hld_1_1")).bearer_auth(token).send();
    assert_eq!(hold(good).await.unwrap().status(), 404, "authenticated, no such hold");
    assert_eq!(hold(bad).await.unwrap().status(), 401);

    child.kill().unwrap();
    child.wait().unwrap();
}
