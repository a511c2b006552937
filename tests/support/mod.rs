//! Test doubles shared by the integration tests: [`fake_kube`], an in-process fake
//! Kubernetes API server whose backend pods are the simulator's organizations.

// Each test crate includes this module and uses a different subset of it, so an
// `#[expect(dead_code)]` would be unfulfilled in the crates that use everything.
#![allow(
    dead_code,
    reason = "each test crate uses a different subset of these helpers"
)]

pub mod fake_kube;
