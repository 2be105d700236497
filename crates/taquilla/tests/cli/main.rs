//! Tests of the real `taquilla` binary as a child process. One test binary for the crate.

mod config;
mod crash;
mod flash_sale;
mod http;
