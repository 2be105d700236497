//! A full disk, for real: a size-limited tmpfs the test mounts (CI runs as root; without the
//! right to mount, the test says so and checks nothing). Writes answer `503 storage_full`
//! with `Retry-After` while reads answer `200`; once space is freed, writes succeed again by
//! themselves; after a restart every acknowledged hold is there and no refused one is.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::helpers::*;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with a message saying why) where this process may not mount.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes a file in `dir` until the file system is full; returns its path.
pub fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0xA5u8; 16 * 1024];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    // Whatever a partial chunk left: one byte at a time.
    while matches!(f.write(&[0]), Ok(1)) {}
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_serves_reads_and_resumes_by_itself() {
    storage_full(Codes::default()).await;
}

pub async fn storage_full(codes: Codes) {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    let mut app = spawn_app(
        AppOptions::default()
            .data_dir_in(fs.path())
            .segment_size(256 * 1024)
            .metrics()
            .codes(&codes),
    )
    .await;
    let event = app.simple_sale(1_000_000, json!({})).await;
    let token = app.buyer_token("filler-buyer");
    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let r = app
            .place_hold(&token, &event, &items(0, 1), Some(&format!("before-{i}")))
            .await;
        acknowledged.push(r.expect_id(201));
    }

    let filler = fill(fs.path());
    // The log's preallocated space runs out after a few hundred holds; then a hold is refused.
    let mut refused = None;
    for i in 0..20_000 {
        let r = app
            .place_hold(&token, &event, &items(0, 1), Some(&format!("full-{i}")))
            .await;
        match r.status {
            201 => acknowledged.push(r.expect_id(201)),
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let refused = refused.expect("a hold refused once the disk is full");
    refused.expect_error(503, "storage_full");
    assert!(
        refused.header("retry-after").is_some(),
        "503 storage_full carries Retry-After"
    );
    assert!(app.engine().storage_full());
    // Still refused (not queued, not half applied), and reads answer meanwhile.
    let again = app.place_hold(&token, &event, &items(0, 1), Some("refused")).await;
    again.expect_error(503, "storage_full");
    app.get_sale(&event).await.expect(200);
    app.get_hold(&token, acknowledged.last().unwrap()).await.expect(200);
    app.stats(&event).await;
    let metrics = app.metrics().await;
    metrics.expect(200);
    assert!(
        metrics.text.contains("taquilla_data_dir_free_bytes"),
        "{}",
        metrics.text
    );

    // Space returns: the next write goes through, with nobody restarting anything.
    std::fs::remove_file(&filler).unwrap();
    let r = app.place_hold(&token, &event, &items(0, 1), Some("after")).await;
    acknowledged.push(r.expect_id(201));
    assert!(!app.engine().storage_full());
    for i in 0..50 {
        let r = app
            .place_hold(&token, &event, &items(0, 1), Some(&format!("after-{i}")))
            .await;
        acknowledged.push(r.expect_id(201));
    }

    // Everything acknowledged survives a restart, and nothing refused was applied.
    app.restart().await;
    for hold in &acknowledged {
        app.get_hold(&token, hold).await.expect(200);
    }
    let stats = app.stats(&event).await;
    assert_eq!(
        stats["holds"]["active"].as_u64(),
        Some(acknowledged.len() as u64),
        "{stats}"
    );
    app.shutdown().await;
}
