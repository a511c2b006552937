//! Providers (in progress).

pub mod sim;
