//! Cursor readers: checkpoint persistence details (the resume behaviour is in the suite).

use std::sync::Arc;
use std::time::Duration;

use taquilla_log::EventLog;
use taquilla_log::cursor::{CursorError, CursorReader, valid_cursor_name};
use taquilla_log::file::FileLog;

use crate::util::*;

#[test]
fn names_are_validated() {
    assert!(valid_cursor_name("a"));
    assert!(valid_cursor_name("Feed_v2-x"));
    assert!(valid_cursor_name(&"z".repeat(64)));
    for bad in ["", "a b", "../x", "é", "a.b", &"z".repeat(65)] {
        assert!(!valid_cursor_name(bad), "{bad:?}");
    }
}

#[test]
fn checkpoints_survive_a_log_reopen_and_damage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cps = dir.path().join("cursors");
    let log_dir = dir.path().join("log");
    let log: Arc<dyn EventLog> = Arc::new(FileLog::open(&log_dir, small_opts()).unwrap().0);
    let mut c = CursorReader::open(Arc::clone(&log), &cps, "feed").unwrap();
    // Nothing to read and nothing polled: commit writes nothing.
    c.commit().unwrap();
    assert!(!cps.join("feed.cursor").exists());
    drop((c, log));

    let file_log = open(&log_dir, &small_opts());
    fill(&file_log, 30, 4);
    let log: Arc<dyn EventLog> = Arc::new(file_log);
    let mut c = CursorReader::open(Arc::clone(&log), &cps, "feed").unwrap();
    let got = c.poll(1000, Duration::from_secs(60)).unwrap();
    assert_eq!(got.len(), 30);
    assert_prefix(&got);
    c.commit().unwrap();
    drop(c);
    let c = CursorReader::open(Arc::clone(&log), &cps, "feed").unwrap();
    assert_eq!(c.position(), 30);
    drop(c);

    flip_bit(&cps.join("feed.cursor"), 9);
    assert!(matches!(
        CursorReader::open(Arc::clone(&log), &cps, "feed"),
        Err(CursorError::Corrupt { .. })
    ));
    std::fs::write(cps.join("feed.cursor"), b"short").unwrap();
    assert!(matches!(
        CursorReader::open(log, &cps, "feed"),
        Err(CursorError::Corrupt { .. })
    ));
}
