//! mimalloc's options the binary sets. The numbers are from `mi_option_e` in the `mimalloc.h`
//! that `libmimalloc-sys` (pinned in `Cargo.lock`) builds; its Rust bindings do not name
//! them all. The one module of the workspace allowed `unsafe`: a foreign call has no safe form.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_long};

// Links mimalloc even where this crate is used without the binary's global allocator (tests).
use mimalloc as _;

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    #[cfg_attr(not(test), allow(dead_code))]
    fn mi_option_get(option: c_int) -> c_long;
}

/// How long freed memory stays before mimalloc gives it back to the OS, in ms (1,000 by
/// default in mimalloc v3; -1: never).
const PURGE_DELAY: c_int = 15;

/// Keeps freed memory instead of giving it back to the OS. For the flash-sale client, which
/// frees and allocates the same buffers at a high rate for a minute at most: purging them made
/// it fault fresh (huge) pages back in mid-rush. The server keeps the default: it runs for
/// months and must give memory back after a burst.
pub fn keep_freed_memory() {
    // SAFETY: sets a plain option; mimalloc reads it on its next purge decision.
    unsafe { mi_option_set(PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_the_option_this_crate_thinks_it_is() {
        // SAFETY: reads an option by number.
        let get = || unsafe { mi_option_get(PURGE_DELAY) };
        // mimalloc v3's documented default: a renumbered enum would read another option.
        assert_eq!(get(), 1000);
        keep_freed_memory();
        assert_eq!(get(), -1);
    }
}
