//! The atomic file replacement shared by snapshots and cursors.

use std::os::unix::fs::PermissionsExt;

use taquilla_log::fsutil::{is_temp_file, remove_temp_files, replace_file, replace_file_with};

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
