//! Helm values per organization (DESIGN §3). Pure.
//!
//! Each backend gets ONE complete document — Helm replaces lists, so a file holding only some
//! pairs would drop the others — built as base ⊕ provider profile ⊕ links ⊕ user values:
//! maps merge, lists and scalars replace, like `helm -f a -f b`. The linking lists and the MSP
//! id are always orgmesh's: they are what the run checks. Entries carry only `name` (the MSP
//! id, never `organizationName`) and `secret`; only the `channel-on-incoming` fault adds the
//! guide's `channel` key, which corrupts the entry (facts §7).

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::scenario::{Fault, Scenario};
use crate::secrets::LinkSecrets;
use crate::topology::Topology;

/// The values of one backend release.
#[derive(Debug, Clone)]
pub struct BackendValues {
    pub organization: String,
    /// `backend-<org>-values.yaml`, the guide's name.
    pub file_name: String,
    /// The complete document, links included.
    pub linked: Value,
}

impl BackendValues {
    /// The same document without links: what `deploy` installs before `link` upgrades.
    pub fn unlinked(&self) -> Value {
        let mut document = self.linked.clone();
        if let Some(accounts) = document
            .get_mut("addAccountOperator")
            .and_then(Value::as_object_mut)
        {
            accounts.insert("incomingOrganizations".into(), json!([]));
            accounts.insert("outgoingOrganizations".into(), json!([]));
        }
        document
    }
}

/// The orchestrator's values file name, the guide's.
pub const ORCHESTRATOR_FILE: &str = "orchestrator-values.yaml";

/// The backend values file name of an organization.
pub fn backend_file_name(organization: &str) -> String {
    format!("backend-{organization}-values.yaml")
}

/// Deep-merges `overlay` into `base` as Helm merges values files: maps merge key by key;
/// anything else, lists included, is replaced. A `Null` overlay is "no values".
pub fn merge(base: &mut Value, overlay: &Value) {
    if overlay.is_null() {
        return;
    }
    merge_into(base, overlay);
}

fn merge_into(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) => merge_into(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// Sets `path` in `document` to `value`, creating maps on the way. Returns whether an
/// existing different value was replaced.
fn force(document: &mut Value, path: &[&str], value: Value) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = document;
    for key in parents {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else {
            return false;
        };
        node = map
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    let Value::Object(map) = node else {
        return false;
    };
    let replaced = map.get(*last).is_some_and(|old| *old != value);
    map.insert((*last).to_owned(), value);
    replaced
}

/// The orchestrator's values: its channels, with members as MSP ids.
pub fn orchestrator_values(scenario: &Scenario) -> Value {
    let channels: Vec<Value> = scenario
        .channels
        .iter()
        .map(|channel| {
            let members: Vec<&str> = channel
                .members
                .iter()
                .filter_map(|m| scenario.organization(m).map(|o| o.msp_id.as_str()))
                .collect();
            json!({"name": channel.name, "organizations": members})
        })
        .collect();
    json!({ "channels": channels })
}

/// Renders every backend's values. `profile(organization)` is the provider's layer (addresses,
/// service type...; `Null` for none). Returns the documents and warnings about user values
/// that orgmesh replaced.
pub fn backend_values(
    scenario: &Scenario,
    topology: &Topology,
    secrets: &LinkSecrets,
    profile: &dyn Fn(&str) -> Value,
) -> (Vec<BackendValues>, Vec<String>) {
    let mut warnings = Vec::new();
    let msp_ids: std::collections::HashMap<&str, &str> = scenario
        .organizations
        .iter()
        .map(|o| (o.name.as_str(), o.msp_id.as_str()))
        .collect();
    let msp = |name: &str| msp_ids.get(name).copied().unwrap_or(name).to_owned();

    let mut wrong = HashSet::new();
    let mut missing_incoming = HashSet::new();
    let mut missing_outgoing = HashSet::new();
    let mut channel_on_incoming = HashSet::new();
    for fault in &scenario.faults {
        match &fault.value {
            Fault::WrongSecret { from, to } => {
                wrong.insert((from.as_str(), to.as_str()));
            }
            Fault::MissingIncoming { from, to } => {
                missing_incoming.insert((from.as_str(), to.as_str()));
            }
            Fault::MissingOutgoing { from, to } => {
                missing_outgoing.insert((from.as_str(), to.as_str()));
            }
            Fault::ChannelOnIncoming { at } => {
                channel_on_incoming.insert(at.as_str());
            }
            Fault::Partition { .. } | Fault::ClusterDown { .. } => {}
        }
    }
    let mut incoming: std::collections::HashMap<&str, Vec<Value>> = Default::default();
    let mut outgoing: std::collections::HashMap<&str, Vec<Value>> = Default::default();
    for link in &topology.links {
        let key = (link.from.as_str(), link.to.as_str());
        let Some(secret) = secrets.link(&link.from, &link.to) else {
            continue;
        };
        if !missing_incoming.contains(&key) {
            let mut entry = json!({"name": msp(&link.from), "secret": secret.expose()});
            if channel_on_incoming.contains(link.to.as_str())
                && let Value::Object(map) = &mut entry
            {
                map.insert("channel".into(), Value::String(link.channel.clone()));
            }
            incoming.entry(link.to.as_str()).or_default().push(entry);
        }
        if !missing_outgoing.contains(&key) {
            let presented = if wrong.contains(&key) {
                secrets.wrong(&link.from, &link.to).unwrap_or(secret)
            } else {
                secret
            };
            outgoing
                .entry(link.from.as_str())
                .or_default()
                .push(json!({"name": msp(&link.to), "secret": presented.expose()}));
        }
    }
    let documents = scenario
        .organizations
        .iter()
        .map(|organization| {
            let channels: Vec<Value> = organization
                .channels
                .iter()
                .map(|c| json!({ c.as_str(): {"restricted": false, "model_export_enabled": true} }))
                .collect();
            let mut document = json!({
                "organizationName": organization.name,
                "orchestrator": {"mspID": organization.msp_id, "channels": channels},
            });
            merge(&mut document, &profile(&organization.name));
            merge(&mut document, &organization.values);
            let forced = [
                (&["orchestrator", "mspID"][..], Value::String(organization.msp_id.clone())),
                (&["addAccountOperator", "incomingOrganizations"][..], Value::Array(incoming.remove(organization.name.as_str()).unwrap_or_default())),
                (&["addAccountOperator", "outgoingOrganizations"][..], Value::Array(outgoing.remove(organization.name.as_str()).unwrap_or_default())),
            ];
            for (path, value) in forced {
                let user_set = path_exists(&organization.values, path);
                force(&mut document, path, value);
                if user_set {
                    warnings.push(format!(
                        "organization `{}`: `values.{}` is replaced by orgmesh's (it is what the run checks)",
                        organization.name,
                        path.join(".")
                    ));
                }
            }
            BackendValues {
                organization: organization.name.clone(),
                file_name: backend_file_name(&organization.name),
                linked: document,
            }
        })
        .collect();
    (documents, warnings)
}

fn path_exists(document: &Value, path: &[&str]) -> bool {
    let mut node = document;
    for key in path {
        match node.get(key) {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}

/// A values document as YAML, ending with a newline. Secrets are long single tokens: plain
/// scalars keep them on one line, greppable and diffable.
pub fn to_yaml(document: &Value) -> Result<String, serde_saphyr::ser::Error> {
    let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
    let mut text = serde_saphyr::to_string_with_options(document, options)?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_helm_like() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
        merge(&mut base, &json!({"a": {"c": [3], "e": true}, "d": null}));
        assert_eq!(base, json!({"a": {"b": 1, "c": [3], "e": true}, "d": null}));
    }

    #[test]
    fn force_reports_replacement() {
        let mut document = json!({"x": {"y": 1}});
        assert!(force(&mut document, &["x", "y"], json!(2)));
        assert!(!force(&mut document, &["x", "z"], json!(3)));
        assert_eq!(document, json!({"x": {"y": 2, "z": 3}}));
    }
}
