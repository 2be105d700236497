//! The atomic file replacement shared by snapshots and cursors.

use std::os::unix::fs::PermissionsExt;

use taquilla_log::fsutil::{is_temp_file, remove_temp_files, replace_file, replace_file_with, write_paced};

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn the_file_holds_the_new_content_with_the_mode_and_no_temp_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    replace_file(&path, b"first", 0o600).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    replace_file(&path, b"second, longer", 0o640).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    replace_file_with(&path, 0o600, |f| {
        use std::io::Write;
        f.write_all(b"in ")?;
        f.write_all(b"parts")
    })
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"in parts");
    assert_eq!(names(dir.path()), vec!["secret".to_string()]);
}

#[test]
fn a_leftover_temp_file_is_never_the_file_and_is_removable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cursor");
    replace_file(&path, b"durable", 0o600).unwrap();
    // A crash after the temp file was written, before the rename.
    let leftover = dir.path().join(".cursor.tmp-999-7");
    std::fs::write(&leftover, b"half written").unwrap();
    assert!(is_temp_file(".cursor.tmp-999-7"));
    assert!(!is_temp_file("cursor"));
    assert_eq!(std::fs::read(&path).unwrap(), b"durable");
    // A later replace writes its own temp file, not the leftover, and keeps it apart.
    replace_file(&path, b"newer", 0o600).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"newer");
    assert_eq!(std::fs::read(&leftover).unwrap(), b"half written");
    assert_eq!(remove_temp_files(dir.path()).unwrap(), 1);
    assert_eq!(names(dir.path()), vec!["cursor".to_string()]);
}

#[test]
fn a_failed_write_leaves_the_old_content_and_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap");
    replace_file(&path, b"old", 0o600).unwrap();
    let err = replace_file_with(&path, 0o600, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    assert_eq!(names(dir.path()), vec!["snap".to_string()]);
}

#[test]
fn a_file_written_in_parts_is_whole_and_a_failure_midway_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap");
    replace_file(&path, b"old", 0o600).unwrap();
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let no_pause = std::time::Duration::ZERO;
    // 7 does not divide 10,000: the last part is short.
    replace_file_with(&path, 0o600, |f| write_paced(f, &bytes, 7, no_pause)).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    // A failure after some parts were written and synced: the target keeps what it had.
    let err = replace_file_with(&path, 0o600, |f| {
        write_paced(f, &[9u8; 5_000], 100, no_pause)?;
        Err(std::io::Error::other("disk full"))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "disk full");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(names(dir.path()), vec!["snap".to_string()]);
}
