//! The domain's tests, compiled into one binary: given/when/then per command, the codec, and
//! a property test of random command sequences against a reference model.

mod catalog;
mod codec;
mod commands;
mod evolve;
mod model;
mod payments;
mod room;
mod support;
