//! The guide's two organizations on REAL kind clusters with the real charts (`ci/guide-kind.yaml`:
//! the guide with the Bitnami subchart images moved to bitnamilegacy). Needs Docker,
//! kind, helm and network access for images and charts, so it is ignored by default and run
//! by `ci/kind-e2e.sh`'s workflow: `cargo test --locked --test kind_real -- --ignored`.

use std::time::Duration;

#[test]
#[ignore = "needs docker + kind + helm"]
fn the_guide_links_on_real_kind() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let run_dir = work.path().join("run");
    let output = assert_cmd::Command::cargo_bin("orgmesh")
        .expect("the binary is built")
        .args(["run", "ci/guide-kind.yaml", "--timeout", "15m", "--run-dir"])
        .arg(&run_dir)
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(45 * 60))
        .output()
        .expect("orgmesh runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = std::fs::read_to_string(run_dir.join("report.json")).expect("report.json");
    let report = orgmesh::report::from_json(&report).expect("a report");
    report.assert_passed();
}
