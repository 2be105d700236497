//! Property tests: the frame format round-trips, and no truncation or bit flip of a valid log
//! makes recovery panic or return anything but a prefix of what was written.

use proptest::prelude::*;

use taquilla_log::file::{FileLog, frame};
use taquilla_log::{Append, LogError};

use crate::util::*;

proptest! {
    #[test]
    fn frame_round_trip(
        lsn in 1u64..,
        partition: u64,
        seq in 1u64..,
        timestamp_ms: i64,
        corr in proptest::option::of("[a-zA-Z0-9ñ✓-]{1,16}"),
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let rec = Append { partition, expected_seq: seq, timestamp_ms, correlation_id: corr.as_deref(), payload: &payload };
        let mut buf = vec![0xee; 3]; // encoding appends after whatever is there
        frame::encode(&mut buf, lsn, &rec);
        prop_assert_eq!(buf.len() - 3, frame::encoded_len(lsn, &rec));
        let (got, n) = frame::decode(&buf[3..]).unwrap();
        prop_assert_eq!(n, buf.len() - 3);
        prop_assert_eq!((got.lsn, got.partition, got.seq, got.timestamp_ms), (lsn, partition, seq, timestamp_ms));
        prop_assert_eq!(got.correlation_id, corr.as_deref());
        prop_assert_eq!(got.payload, &payload[..]);
        // Every strict prefix is incomplete, never a (wrong) record.
        for cut in [0, 1, 7, 8, n / 2, n - 1] {
            let is_incomplete = matches!(frame::decode(&buf[3..3 + cut]), Err(frame::DecodeError::Incomplete { .. }));
            prop_assert!(is_incomplete);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = frame::decode(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_truncation_recovers_to_a_prefix(records in 1u64..80, batch in 1u64..10, cut_permille in 0u64..=1000) {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), &small_opts());
        fill(&log, records, batch);
        drop(log);
        let seg = segments(dir.path()).pop().unwrap();
        let len = std::fs::metadata(&seg).unwrap().len();
        let cut = len * cut_permille / 1000;
        std::fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();

        let (log, report) = FileLog::open(dir.path(), small_opts()).unwrap();
        let all = read_all(&log);
        prop_assert!(all.len() as u64 <= records);
        prop_assert_eq!(report.last_lsn, all.len() as u64);
        assert_prefix(&all);
        // And the log keeps working.
        let last = fill(&log, 3, 3);
        prop_assert_eq!(last, all.len() as u64 + 3);
    }

    #[test]
    fn any_bit_flip_is_detected_or_recovers_to_a_prefix(records in 1u64..60, at_permille in 0u64..1000, bit in 0u8..8) {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), &small_opts());
        fill(&log, records, 4);
        drop(log);
        let segs = segments(dir.path());
        let total: u64 = segs.iter().map(|s| std::fs::metadata(s).unwrap().len()).sum();
        let mut at = total * at_permille / 1000;
        let mut in_data = false;
        for seg in &segs {
            let len = std::fs::metadata(seg).unwrap().len();
            if at < len {
                in_data = at < data_end(seg);
                let mut bytes = std::fs::read(seg).unwrap();
                bytes[at as usize] ^= 1 << bit;
                std::fs::write(seg, bytes).unwrap();
                break;
            }
            at -= len;
        }
        match FileLog::open(dir.path(), small_opts()) {
            Ok((log, report)) => {
                let all = read_all(&log);
                if in_data {
                    prop_assert!((all.len() as u64) < records, "a flipped bit went unnoticed");
                } else {
                    // In the zeros of a preallocated segment: no record is touched, and the
                    // stray byte is cleared.
                    prop_assert_eq!(all.len() as u64, records);
                    prop_assert!(report.truncated.is_some());
                }
                assert_prefix(&all);
            }
            Err(LogError::Corrupt { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}
