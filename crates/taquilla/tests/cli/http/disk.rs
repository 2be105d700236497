//! A full disk and SIGKILL: `serve` on a size-limited tmpfs the test mounts (CI runs as root;
//! without the right to mount, the test says so and checks nothing). Filled up, it answers
//! `503 storage_full`; killed there, it starts again on the still-full disk, serves every
//! acknowledged hold, still refuses writes; once space is freed it takes them again, and a
//! second SIGKILL loses none of them.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::json;

use super::support::*;

struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir)),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}); this test needs root (CI runs as root)",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e}); this test needs root and mount(8)");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn fill(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0xA5u8; 16 * 1024];
    while matches!(f.write(&chunk), Ok(n) if n > 0) {}
    while matches!(f.write(&[0]), Ok(1)) {}
    path
}

async fn hold(s: &Server, token: &str, event: &str) -> Resp {
    let body = json!({"items": [{"ticket_type_id": 0, "quantity": 1}]});
    s.buyer(token, Method::POST, &format!("/v1/events/{event}/holds"), Some(&body))
        .await
}

async fn all_there(s: &Server, token: &str, event: &str, acknowledged: &[String]) {
    for id in acknowledged {
        s.buyer(token, Method::GET, &format!("/v1/holds/{id}"), None)
            .await
            .expect(200);
    }
    let stats = s.stats(event).await;
    assert_eq!(stats["held"].as_u64(), Some(acknowledged.len() as u64), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_on_a_full_disk_loses_nothing_and_writes_resume_when_space_returns() {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let data = fs.0.path().join("data");
    let args = ["--segment-size-bytes", "262144"];
    let mut s = Server::start_in(&data, &args).await;
    let event = s.simple_sale(1_000_000, json!({"hold_ttl_secs": 86_400})).await;
    let token = buyer_token("b1");
    let filler = fill(fs.0.path());
    let mut acknowledged = Vec::new();
    for _ in 0..20_000 {
        let r = hold(&s, &token, &event).await;
        if r.status != 201 {
            assert_eq!(
                (r.status, r.json["error"]["code"].as_str()),
                (503, Some("storage_full")),
                "{}",
                r.text
            );
            break;
        }
        acknowledged.push(r.json["id"].as_str().expect("id").to_string());
    }
    assert!(!acknowledged.is_empty());
    s.kill();

    // Restart on the still-full disk: everything acknowledged is served, writes are refused.
    let mut s = Server::start_in(&data, &args).await;
    all_there(&s, &token, &event, &acknowledged).await;
    let r = hold(&s, &token, &event).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].as_str()),
        (503, Some("storage_full")),
        "{}",
        r.text
    );

    std::fs::remove_file(&filler).unwrap();
    for _ in 0..20 {
        let r = hold(&s, &token, &event).await;
        acknowledged.push(r.expect(201)["id"].as_str().expect("id").to_string());
    }
    s.kill();
    let s = Server::start_in(&data, &args).await;
    all_there(&s, &token, &event, &acknowledged).await;
}
