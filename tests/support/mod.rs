//! Test doubles shared by the integration tests: [`fake_kube`], an in-process fake
//! Kubernetes API server whose backend pods are the simulator's organizations.

// Each test crate includes this module and uses a different subset of it, so an
// `#[expect(dead_code)]` would be unfulfilled in the crates that use everything.
#![allow(
    dead_code,
    reason = "each test crate uses a different subset of these helpers"
)]

pub mod fake_kube;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use orgmesh::provider::sim::{SimNetwork, SimOptions};
use orgmesh::report::Report;

use fake_kube::FakeCluster;

/// `count` fake clusters named `<prefix>-<i>` with node IPs 127.0.`base + i`.1, whose pods are
/// organizations of one simulated network.
pub async fn fake_clusters(count: usize, base: u8, prefix: &str) -> Vec<FakeCluster> {
    let network = SimNetwork::new(SimOptions {
        sync_lag: Duration::from_millis(20),
        ..SimOptions::default()
    });
    let mut clusters = Vec::new();
    for index in 0..count {
        let ip = Ipv4Addr::new(127, 0, base + index as u8, 1);
        clusters.push(FakeCluster::start(&format!("{prefix}-{index}"), ip, network.clone()).await);
    }
    clusters
}

/// A finished command's exit code and both streams, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The run's report.json.
pub fn report(run_dir: &Path) -> Report {
    let json =
        std::fs::read_to_string(run_dir.join("report.json")).expect("report.json is written");
    orgmesh::report::from_json(&json).expect("report.json parses")
}

/// The guide's four directed links (self links included) passed reach and auth.
pub fn assert_guide_links_passed(report: &Report) {
    for (from, to) in [
        ("ingen", "ingen"),
        ("ingen", "biotechnica"),
        ("biotechnica", "ingen"),
        ("biotechnica", "biotechnica"),
    ] {
        for kind in [
            orgmesh::report::CheckKind::Reach,
            orgmesh::report::CheckKind::Auth,
        ] {
            let check = report
                .check(kind, from, to)
                .unwrap_or_else(|| panic!("{kind} {from}→{to}"));
            assert!(check.passed, "{check:?}");
        }
    }
}
