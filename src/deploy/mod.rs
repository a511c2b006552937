//! Deploying charts: releases as data, turned into helm commands run through the process seam.
//!
//! [`helm`] holds the pure argv builders (snapshot-tested for Helm 3 and 4), the parsers of
//! helm's JSON and version output, and thin async wrappers that run them.

pub mod helm;

pub use helm::{ChartRef, HelmError, HelmVersion, ListedRelease, Release};
