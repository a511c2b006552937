//! The kind values profile: a snapshot of what orgmesh layers over an organization's values on
//! kind, and a check that every key it sets exists in the substra-backend chart 26.15.3 — a
//! misspelt key would be silently ignored by Helm and the setting would never apply.

use std::collections::HashSet;

use orgmesh::provider::profile::{self, ImageOverrides, OrchestratorEndpoint};
use serde_json::Value;

fn chart_keys() -> HashSet<String> {
    std::fs::read_to_string("fixtures/charts/substra-backend-26.15.3-keys.txt")
        .expect("the chart key list is committed")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `path` is a key of the chart, or lies in one of its free-form maps (`x.*`).
fn is_chart_key(keys: &HashSet<String>, path: &str) -> bool {
    keys.contains(path)
        || path
            .match_indices('.')
            .any(|(index, _)| keys.contains(&format!("{}.*", &path[..index])))
}

/// Every leaf path of a values document, dotted.
fn leaf_paths(value: &Value, prefix: &str, paths: &mut Vec<String>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_paths(child, &path, paths);
            }
        }
        _ => paths.push(prefix.to_owned()),
    }
}

fn profiles() -> Vec<(&'static str, Value)> {
    let same = OrchestratorEndpoint::for_cluster("cluster-1", "cluster-1", "172.18.0.2");
    let other = OrchestratorEndpoint::for_cluster("cluster-2", "cluster-1", "172.18.0.2");
    vec![
        (
            "ingen",
            profile::kind_backend(
                "ingen",
                "172.18.0.2",
                30800,
                &same,
                &ImageOverrides::default(),
            ),
        ),
        (
            "biotechnica",
            profile::kind_backend(
                "biotechnica",
                "172.18.0.3",
                30800,
                &other,
                &ImageOverrides::default(),
            ),
        ),
    ]
}

#[test]
fn every_key_of_the_kind_profile_exists_in_chart_26_15_3() {
    let keys = chart_keys();
    for (organization, values) in profiles() {
        let mut paths = Vec::new();
        leaf_paths(&values, "", &mut paths);
        let unknown: Vec<&String> = paths.iter().filter(|p| !is_chart_key(&keys, p)).collect();
        assert!(
            unknown.is_empty(),
            "{organization}: keys not in substra-backend 26.15.3: {unknown:?}"
        );
    }
}

#[test]
fn the_check_itself_catches_a_misspelt_key() {
    let keys = chart_keys();
    assert!(keys.contains("server.service.nodePort"));
    assert!(!is_chart_key(&keys, "server.service.nodeport"));
    assert!(is_chart_key(&keys, "config.ALLOWED_HOSTS"));
}

#[test]
fn kind_profile_snapshot() {
    for (organization, values) in profiles() {
        insta::assert_yaml_snapshot!(format!("kind_profile_{organization}"), values);
    }
}
