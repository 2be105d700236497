//! Other processes and this one's limits: signals to a child, the open-file limit, CPU time,
//! and the scheduling priority of a background thread.

use std::time::Duration;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::kill;
use nix::unistd::{Pid, SysconfVar, sysconf};

pub use nix::sys::signal::Signal;

/// Sends `signal` to process `pid` (e.g. `SIGTERM` to a child for a graceful stop).
pub fn send_signal(pid: u32, signal: Signal) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    kill(Pid::from_raw(pid), signal).map_err(std::io::Error::from)
}

/// Raises the soft limit on open files to at least `want` (up to the hard limit, or past it
/// when the process may). Children inherit it. `Err` names the hard limit that stood in the way.
pub fn raise_open_files(want: u64) -> Result<(), String> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(RLIMIT_NOFILE): {e}"))?;
    if soft >= want {
        return Ok(());
    }
    let new_soft = want.max(hard.min(1 << 20));
    setrlimit(Resource::RLIMIT_NOFILE, new_soft, hard.max(want))
        .map_err(|_| format!("{want} open files needed; the hard limit is {hard} (raise it with ulimit -Hn)"))
}

/// The nice value [`run_in_background`] gives a thread: the lowest priority of the normal
/// scheduler (a CPU share of ~1.5 % against a thread at 0 when both want the core).
pub const BACKGROUND_NICE: i32 = 19;

/// Lowers the calling thread (only it: on Linux the nice value is per thread) to
/// [`BACKGROUND_NICE`], so that whenever a thread at normal priority wants its core it gets
/// it at once. Not `SCHED_IDLE`: that never runs while the cores are busy, and a background
/// thread that holds a lock a writer needs (the log's, briefly) must still get to release it.
pub fn run_in_background() -> std::io::Result<()> {
    rustix::process::setpriority_process(Some(rustix::thread::gettid()), BACKGROUND_NICE).map_err(std::io::Error::from)
}

/// The calling thread's nice value.
pub fn thread_nice() -> std::io::Result<i32> {
    rustix::process::getpriority_process(Some(rustix::thread::gettid())).map_err(std::io::Error::from)
}

/// CPU time (user + system, all threads) a process has used so far, from `/proc/PID/stat`;
/// `None` where there is no procfs. Clock-tick resolution (10 ms on Linux).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    // After the name: state (3), ..., utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = sysconf(SysconfVar::CLK_TCK).ok()??;
    let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
    Some(Duration::from_secs_f64((utime + stime) as f64 / ticks as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_used_some_cpu_time() {
        let mut spent = 0u64;
        for i in 0..20_000_000u64 {
            spent = spent.wrapping_add(i * i);
        }
        std::hint::black_box(spent);
        assert!(cpu_time(std::process::id()).is_some_and(|t| t > Duration::ZERO));
        assert_eq!(cpu_time(u32::MAX), None);
    }

    #[test]
    fn a_child_stops_on_sigterm() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        send_signal(child.id(), Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(15));
    }

    #[test]
    fn a_background_thread_is_lowered_alone() {
        let before = thread_nice().unwrap();
        let lowered = std::thread::spawn(|| {
            run_in_background().unwrap();
            thread_nice().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, BACKGROUND_NICE);
        assert_eq!(thread_nice().unwrap(), before, "the calling thread keeps its priority");
    }

    #[test]
    fn the_open_file_limit_already_met_is_a_no_op() {
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(raise_open_files(soft), Ok(()));
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, soft);
    }
}
