//! `orgmesh schema` is a JSON Schema (draft 2020-12) that accepts every shipped scenario and
//! rejects the structurally invalid fixtures, so that editors flag what `validate` would.
//!
//! The schema cannot express the semantic rules (names that resolve, unique MSP ids,
//! duplicate keys, parser budgets); the fixtures for those are left to `invalid_fixtures.rs`.

mod common;

use std::path::PathBuf;

use rstest::rstest;
use serde_json::Value;

use common::{orgmesh, package_root};

/// The fixtures whose defect is structural: a key, a type, a pattern, a length or an enum
/// value the schema describes. Every other fixture is semantic or not parseable YAML.
const STRUCTURAL_FIXTURES: &[&str] = &[
    "fixtures/invalid/unknown-key.yaml",
    "fixtures/invalid/unknown-top-level-key.yaml",
    "fixtures/invalid/bad-scenario-name.yaml",
    "fixtures/invalid/scenario-name-too-long.yaml",
    "fixtures/invalid/wrong-type.yaml",
    "fixtures/invalid/unknown-link-mode.yaml",
    "fixtures/regressions/missing-name.yaml",
];

fn validator() -> jsonschema::Validator {
    let output = orgmesh().arg("schema").output().expect("orgmesh runs");
    assert!(output.status.success());
    let schema: Value =
        serde_json::from_slice(&output.stdout).expect("`orgmesh schema` prints JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    // Offline: default features are off, so any remote reference would fail to resolve here.
    jsonschema::validator_for(&schema).expect("the schema is itself a valid draft 2020-12 schema")
}

/// The scenario as JSON, as an editor's YAML language server sees it.
fn instance(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

#[rstest]
fn the_schema_accepts_every_scenario(#[files("scenarios/*.yaml")] path: PathBuf) {
    let validator = validator();
    let instance = instance(&path);
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{}:\n{}",
        path.display(),
        errors.join("\n")
    );
}

#[test]
fn the_schema_rejects_structurally_invalid_fixtures() {
    let validator = validator();
    for fixture in STRUCTURAL_FIXTURES {
        let instance = instance(&package_root().join(fixture));
        assert!(
            !validator.is_valid(&instance),
            "the schema accepts {fixture}"
        );
    }
}

/// The least the schema must describe for completion: every top-level key of DESIGN §2.
#[test]
fn the_schema_names_every_top_level_key() {
    let output = orgmesh().arg("schema").output().expect("orgmesh runs");
    let schema: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let keys: Vec<&str> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "version",
        "name",
        "description",
        "provider",
        "charts",
        "clusters",
        "orchestrator",
        "channels",
        "organizations",
        "links",
        "steps",
        "faults",
        "expect",
    ] {
        assert!(keys.contains(&key), "the schema lacks `{key}`: {keys:?}");
    }
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are errors"
    );
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["channels", "name", "organizations"]);
}
