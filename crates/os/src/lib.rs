//! Process-level OS facilities shared by the `taquilla` binary and the benchmarks: pinning
//! to CPU cores, the open-file limit, CPU time used by a process, signals, and the allocator's
//! options. System calls go through `nix`'s safe wrappers; the only `unsafe` in the workspace
//! is the allocator's FFI in [`allocator`].

pub mod affinity;
pub mod allocator;
pub mod process;
