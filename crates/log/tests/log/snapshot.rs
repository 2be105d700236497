//! Snapshot store: atomic save (also when written in parts), load, corruption detection, listing.

use taquilla_log::snapshot::{SNAPSHOT_MAX_BYTES, Snapshot, SnapshotError, SnapshotOptions, SnapshotStore};

#[test]
fn save_load_overwrite_list() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(&dir.path().join("snaps")).unwrap();
    assert_eq!(store.load(1).unwrap(), None);
    assert!(store.list().unwrap().is_empty());
    store.save(1, 10, 100, b"state one").unwrap();
    store.save(42, 3, 7, b"").unwrap();
    assert_eq!(
        store.load(1).unwrap(),
        Some(Snapshot {
            partition: 1,
            seq: 10,
            lsn: 100,
            bytes: b"state one".to_vec()
        })
    );
    assert_eq!(store.load(42).unwrap().unwrap().bytes, Vec::<u8>::new());
    store.save(1, 20, 200, b"state two").unwrap();
    let s = store.load(1).unwrap().unwrap();
    assert_eq!((s.seq, s.lsn, s.bytes.as_slice()), (20, 200, &b"state two"[..]));
    assert_eq!(store.list().unwrap(), vec![1, 42]);
    store.remove(42).unwrap();
    store.remove(42).unwrap();
    assert_eq!(store.list().unwrap(), vec![1]);
    // No temp files left behind.
    let names: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("p-1.snap")]);
}

#[test]
fn corruption_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    let body = vec![7u8; 1000];
    store.save(5, 1, 1, &body).unwrap();
    let path = store.path(5);
    let good = std::fs::read(&path).unwrap();
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let damages: Vec<Damage> = vec![
        Box::new(|b| b[500] ^= 1),     // body
        Box::new(|b| b[22] ^= 1),      // seq in the header
        Box::new(|b| b[0] = b'X'),     // magic
        Box::new(|b| b.truncate(900)), // short body
        Box::new(|b| b.truncate(10)),  // short header
        Box::new(|b| b.push(0)),       // trailing byte
        Box::new(|b| b[12] ^= 1),      // partition
    ];
    for damage in damages {
        let mut bytes = good.clone();
        damage(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        match store.load(5) {
            Err(SnapshotError::Corrupt { path: p, .. }) => assert_eq!(p, path),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    // A snapshot of another partition under this name is not trusted either.
    store.save(6, 1, 1, b"six").unwrap();
    std::fs::rename(store.path(6), &path).unwrap();
    assert!(matches!(store.load(5), Err(SnapshotError::Corrupt { .. })));
}

#[test]
fn stale_temp_files_are_removed_and_limits_enforced() {
    let dir = tempfile::tempdir().unwrap();
    // What a crash in the middle of `save` leaves (see `fsutil::replace_file`).
    let leftover = dir.path().join(".p-1.snap.tmp-123-0");
    std::fs::write(&leftover, b"half written").unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    assert!(!leftover.exists());
    let big = vec![0u8; SNAPSHOT_MAX_BYTES + 1];
    assert!(matches!(store.save(1, 1, 1, &big), Err(SnapshotError::TooLarge { .. })));
    assert_eq!(store.load(1).unwrap(), None);
}

#[test]
fn a_snapshot_written_in_parts_is_replaced_whole_while_readers_look() {
    let dir = tempfile::tempdir().unwrap();
    // 4,096 parts of 64 bytes, each synced and followed by a pause: readers get many looks
    // at the store while the temp file is half written.
    let opts = SnapshotOptions { write_chunk_bytes: 64 };
    let store = std::sync::Arc::new(SnapshotStore::open_with(dir.path(), opts).unwrap());
    let old = vec![1u8; 256 * 1024];
    let new = vec![2u8; 256 * 1024];
    store.save(1, 1, 10, &old).unwrap();
    let saving = std::sync::atomic::AtomicBool::new(true);
    let (looks, _) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let (mut looks, mut saw_new) = (0u64, false);
            while saving.load(std::sync::atomic::Ordering::Acquire) {
                let s = store.load(1).expect("never corrupt").expect("never missing");
                match s.seq {
                    1 => assert!(s.bytes == old && s.lsn == 10, "the old one, whole"),
                    2 => {
                        assert!(s.bytes == new && s.lsn == 20, "the new one, whole");
                        saw_new = true;
                    }
                    seq => panic!("seq {seq}"),
                }
                looks += 1;
            }
            (looks, saw_new)
        });
        store.save(1, 2, 20, &new).unwrap();
        saving.store(false, std::sync::atomic::Ordering::Release);
        reader.join().unwrap()
    });
    assert!(looks > 1, "the reader looked while the parts were written");
    assert_eq!(store.load(1).unwrap().unwrap().bytes, new);
    let names: Vec<_> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("p-1.snap")], "no temp file left");
}
