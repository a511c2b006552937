//! `orgmesh image build`: the simulator image is built locally, FROM scratch, from the running
//! binary and the shared libraries it loads, and the binary runs in it. Needs a Docker engine;
//! without one the test says so and does nothing (it never passes by pretending).

use std::process::Command;

fn docker_reachable() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn the_image_is_built_from_scratch_and_runs_orgmesh() {
    if !docker_reachable() {
        eprintln!("skipped: no Docker engine is reachable (`docker info` failed)");
        return;
    }
    let output = assert_cmd::Command::cargo_bin("orgmesh")
        .expect("the binary is built")
        .args(["image", "build"])
        .output()
        .expect("orgmesh runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reference = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let binary = std::fs::read(assert_cmd::cargo::cargo_bin("orgmesh")).expect("the binary");
    assert_eq!(reference, orgmesh::image::reference_for(&binary));

    let inspect = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .Config.Labels}} {{len .RootFS.Layers}}",
            &reference,
        ])
        .output()
        .expect("docker runs");
    let inspected = String::from_utf8_lossy(&inspect.stdout);
    assert!(
        inspected.contains("\"dev.orgmesh.image\":\"sim\""),
        "{inspected}"
    );
    assert!(
        inspected.trim().ends_with(" 1"),
        "one layer on scratch: {inspected}"
    );

    let label = format!("dev.orgmesh.run=image-test-{}", std::process::id());
    let run = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--label",
            &label,
            &reference,
            "--version",
        ])
        .output()
        .expect("docker runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        format!("orgmesh {}", env!("CARGO_PKG_VERSION"))
    );
    let left = Command::new("docker")
        .args(["ps", "-a", "--quiet", "--filter", &format!("label={label}")])
        .output()
        .expect("docker runs");
    assert!(left.stdout.is_empty(), "a container was left behind");
}
