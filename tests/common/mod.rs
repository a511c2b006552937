//! Helpers shared by the integration tests: the `orgmesh` command as the tests run it, and
//! reading back the YAML files it renders.

// Each test crate includes this module and uses a different subset of it, so an
// `#[expect(dead_code)]` would be unfulfilled in the crates that use everything.
#![allow(
    dead_code,
    reason = "each test crate uses a different subset of these helpers"
)]

pub mod run;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

/// The length of a link secret: 64 bytes, hex-encoded (DESIGN §3).
pub const SECRET_LENGTH: usize = 128;

/// The `orgmesh` binary of this package, run from the package root without colour, so that
/// relative paths such as `scenarios/guide.yaml` resolve and diagnostics are plain text.
pub fn orgmesh() -> Command {
    let mut command = Command::cargo_bin("orgmesh").expect("the orgmesh binary is built for tests");
    command.current_dir(package_root()).env("NO_COLOR", "1");
    command
}

/// The directory holding `Cargo.toml`, `scenarios/` and `fixtures/`.
pub fn package_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `path` relative to the package root, as a user would type it on the command line.
pub fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(package_root())
        .map_or_else(|_| path.to_path_buf(), Path::to_path_buf)
}

/// Reads a rendered YAML file back into a JSON value.
pub fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_saphyr::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not valid YAML: {error}", path.display()))
}

/// Whether `text` looks like a link secret: 128 lowercase hex digits.
pub fn is_secret_like(text: &str) -> bool {
    text.len() == SECRET_LENGTH
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Every `secret` value of every incoming and outgoing entry in the `.yaml` files of
/// `directory`.
pub fn rendered_secrets(directory: &Path) -> BTreeSet<String> {
    let mut secrets = BTreeSet::new();
    for entry in std::fs::read_dir(directory).expect("the render directory is readable") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let document = read_yaml(&path);
        for list in ["incomingOrganizations", "outgoingOrganizations"] {
            let entries = document
                .pointer(&format!("/addAccountOperator/{list}"))
                .and_then(Value::as_array);
            for entry in entries.into_iter().flatten() {
                if let Some(secret) = entry.get("secret").and_then(Value::as_str) {
                    secrets.insert(secret.to_owned());
                }
            }
        }
    }
    secrets
}

/// Every 128-character hex run in `text`, however it is embedded.
pub fn secret_like_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for character in text.chars().chain(std::iter::once(' ')) {
        if character.is_ascii_hexdigit() {
            current.push(character);
        } else {
            if current.len() >= SECRET_LENGTH {
                runs.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    runs
}

/// Whether a Docker engine answers. When it does not, says `SKIPPED: …` (the caller returns);
/// with `ORGMESH_REQUIRE_DOCKER=1` (CI) that is a failure instead.
pub fn docker_reachable() -> bool {
    let info = std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    if info.as_ref().is_ok_and(|output| output.status.success()) {
        return true;
    }
    let reason = match &info {
        Ok(output) => String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        Err(error) => format!("docker: {error}"),
    };
    assert!(
        std::env::var("ORGMESH_REQUIRE_DOCKER").as_deref() != Ok("1"),
        "ORGMESH_REQUIRE_DOCKER=1 but no Docker engine is reachable: {reason}"
    );
    eprintln!("SKIPPED: no Docker engine is reachable ({reason})");
    false
}
