//! Pinning the current process to CPU cores, so "one core" means one core.

/// Restricts the whole process (every thread, including ones started later) to `cores`.
pub fn pin_process(cores: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write inside it; sched_setaffinity
    // reads it. pid 0 = the calling thread; threads started afterwards inherit the mask, and
    // we call this before starting any.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &c in cores {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Parses "0", "0,1" or "0-3".
pub fn parse_cores(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a.parse().map_err(|_| format!("bad core range {part}"))?;
            let b: usize = b.parse().map_err(|_| format!("bad core range {part}"))?;
            if a > b || b >= 1024 {
                return Err(format!("bad core range {part}"));
            }
            out.extend(a..=b);
        } else {
            let c: usize = part.parse().map_err(|_| format!("bad core {part}"))?;
            if c >= 1024 {
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

/// The cores the current process may run on.
pub fn allowed_cores() -> std::io::Result<Vec<usize>> {
    // SAFETY: as in `pin_process`; sched_getaffinity fills the set we pass.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect())
    }
}
