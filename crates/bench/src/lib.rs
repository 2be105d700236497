//! Benchmarks built into the binary (`taquilla bench ...`). They print figures; nothing here
//! asserts a speed.

pub mod churn;
pub mod engine;
pub mod flash_sale;
pub mod room_memory;
pub mod snapshot_stall;
