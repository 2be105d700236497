//! The shared suite against `FileLog` (in a temp dir) and `MemLog`.

use std::path::PathBuf;
use std::sync::Arc;

use taquilla_log::EventLog;
use taquilla_log::conformance::Harness;
use taquilla_log::file::{FileLog, FileLogOptions};
use taquilla_log::mem::MemLog;

/// File logs in temp dirs. Small segments and a dense index so the suite also crosses segment
/// boundaries and index entries.
pub struct FileHarness {
    dirs: Vec<tempfile::TempDir>,
    opts: FileLogOptions,
}

impl FileHarness {
    pub fn new(opts: FileLogOptions) -> Self {
        FileHarness { dirs: Vec::new(), opts }
    }

    fn current(&self) -> PathBuf {
        self.dirs.last().expect("open before reopen").path().to_path_buf()
    }
}

impl Harness for FileHarness {
    fn open(&mut self) -> Arc<dyn EventLog> {
        self.dirs.push(tempfile::tempdir().expect("tempdir"));
        self.reopen()
    }

    fn reopen(&mut self) -> Arc<dyn EventLog> {
        let (log, _report) = FileLog::open(&self.current(), self.opts.clone()).expect("open file log");
        Arc::new(log)
    }
}

/// Memory logs; a reopen keeps what a crash would keep (the durable prefix).
#[derive(Default)]
pub struct MemHarness {
    current: Option<Arc<MemLog>>,
}

impl Harness for MemHarness {
    fn open(&mut self) -> Arc<dyn EventLog> {
        let log = Arc::new(MemLog::new());
        self.current = Some(Arc::clone(&log));
        log
    }

    fn reopen(&mut self) -> Arc<dyn EventLog> {
        let old = self.current.take().expect("open before reopen");
        let log = Arc::new(old.after_crash());
        self.current = Some(Arc::clone(&log));
        log
    }
}

macro_rules! suite {
    ($module:ident, $harness:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            suite!(@checks $harness;
                append_scan_round_trip,
                lsn_contiguity,
                per_partition_seqs,
                conditional_append_conflict_is_all_or_nothing,
                empty_batch,
                limits_rejected_without_writing,
                flush_makes_durable_and_readers_see_only_durable,
                read_respects_max,
                durability_across_reopen,
                concurrent_appenders_and_flushers,
                concurrent_appenders_same_partition_are_fenced,
                concurrent_readers_follow_writes,
                wait_durable_wakes_on_flush,
                cursor_reader_resumes_at_least_once,
            );
        }
    };
    (@checks $harness:expr; $($check:ident,)*) => {
        $(
            #[test]
            fn $check() {
                let mut h = $harness;
                taquilla_log::conformance::$check(&mut h);
            }
        )*
    };
}

suite!(file_default, FileHarness::new(FileLogOptions::default()));
suite!(
    file_small_segments,
    FileHarness::new(FileLogOptions {
        segment_size_bytes: 2048,
        index_interval_records: 8,
        ..FileLogOptions::default()
    })
);
suite!(
    file_small_unprepared_segments,
    FileHarness::new(FileLogOptions {
        segment_size_bytes: 2048,
        index_interval_records: 8,
        preallocate: false,
        ..FileLogOptions::default()
    })
);
suite!(mem, MemHarness::default());

#[test]
fn run_all_mem() {
    taquilla_log::conformance::run_all(&mut MemHarness::default());
}
