//! Pinning the current process to CPU cores, so "one core" means one core.

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// Highest core number `parse_cores` accepts (exclusive).
pub const CORES_MAX: usize = 1024;

/// Restricts the whole process (every thread, including ones started later) to `cores`.
/// Call it before starting threads: only the calling thread's mask changes, and threads
/// started afterwards inherit it.
pub fn pin_process(cores: &[usize]) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    for &c in cores {
        set.set(c).map_err(std::io::Error::from)?;
    }
    sched_setaffinity(Pid::from_raw(0), &set).map_err(std::io::Error::from)
}

/// The cores the current process may run on.
pub fn allowed_cores() -> std::io::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(std::io::Error::from)?;
    Ok((0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Parses "0", "0,1" or "0-3".
pub fn parse_cores(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a.parse().map_err(|_| format!("bad core range {part}"))?;
            let b: usize = b.parse().map_err(|_| format!("bad core range {part}"))?;
            if a > b || b >= CORES_MAX {
                return Err(format!("bad core range {part}"));
            }
            out.extend(a..=b);
        } else {
            let c: usize = part.parse().map_err(|_| format!("bad core {part}"))?;
            if c >= CORES_MAX {
                return Err(format!("bad core {part}"));
            }
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err("no cores given".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_and_ranges_parse_and_junk_is_refused() {
        assert_eq!(parse_cores("0"), Ok(vec![0]));
        assert_eq!(parse_cores("0, 2"), Ok(vec![0, 2]));
        assert_eq!(parse_cores("1-3"), Ok(vec![1, 2, 3]));
        for junk in ["", "a", "3-1", "0-1024", "1024", "1,,2"] {
            assert!(parse_cores(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn the_process_runs_on_some_core() {
        let cores = allowed_cores().unwrap();
        assert!(!cores.is_empty());
    }
}
