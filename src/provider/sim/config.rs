//! The keys of a backend values document that the simulator reads, checked the way the chart
//! and the backend settings would react to them.
//!
//! The chart renders `config.*` into environment variables and the Django settings parse them
//! at start-up, so a malformed value (say an `ALLOWED_HOSTS` that is a YAML list instead of a
//! string holding a JSON list) crashes the server and the install never becomes ready. Here
//! that is a [`ValuesError`] and `install_backend` fails.

use std::fmt;

use serde_json::Value;

/// The anonymous throttle rate when `config.DEFAULT_THROTTLE_RATES` is unset (facts §5).
pub const DEFAULT_THROTTLE_RATE: u32 = 40;

/// One entry of `addAccountOperator.users`, `.incomingOrganizations` or `.outgoingOrganizations`.
///
/// `Debug` never shows the secret: values documents hold every secret of the network.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountEntry {
    pub name: String,
    pub secret: String,
    pub channel: Option<String>,
}

impl fmt::Debug for AccountEntry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AccountEntry")
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .field("channel", &self.channel)
            .finish()
    }
}

/// What one backend release is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// `organizationName`: only a display name, shown by `/info/`.
    pub organization_name: String,
    /// `orchestrator.mspID`: the identity used everywhere else.
    pub msp_id: String,
    /// The channel names of `orchestrator.channels`, in values order.
    pub channels: Vec<String>,
    /// `server.defaultDomain`: the address registered with the orchestrator.
    pub default_domain: String,
    /// The list held by the `config.ALLOWED_HOSTS` string.
    pub allowed_hosts: Vec<String>,
    /// `config.DEFAULT_THROTTLE_RATES`: anonymous requests per minute per client address.
    pub throttle_rate: u32,
    /// `server.image.tag`, when the values override the chart's `appVersion`.
    pub image_tag: Option<String>,
    pub users: Vec<AccountEntry>,
    pub incoming_organizations: Vec<AccountEntry>,
    pub outgoing_organizations: Vec<AccountEntry>,
}

/// Why a values document cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValuesError {
    #[error("`{key}` is missing")]
    Missing { key: &'static str },
    #[error("`{key}` must be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error(
        "`config.ALLOWED_HOSTS` must be a string holding a JSON list of strings, such as '[\".cluster-1.example\"]' (the settings run json.loads on it)"
    )]
    AllowedHostsNotJsonList,
    #[error("`config.DEFAULT_THROTTLE_RATES` must be a whole number of requests per minute")]
    ThrottleRateNotNumber,
}

/// Follows `path` through nested maps; `None` when any step is absent or `null`.
fn lookup<'a>(values: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut current = values;
    for key in path {
        current = current.get(key)?;
    }
    (!current.is_null()).then_some(current)
}

fn string_at(
    values: &Value,
    path: &[&str],
    key: &'static str,
) -> Result<Option<String>, ValuesError> {
    match lookup(values, path) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        // Helm renders numbers and booleans as text, so accept them as the chart would.
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(Value::Bool(flag)) => Ok(Some(flag.to_string())),
        Some(_) => Err(ValuesError::WrongType {
            key: key.to_owned(),
            expected: "a string",
        }),
    }
}

fn required_string(
    values: &Value,
    path: &[&str],
    key: &'static str,
) -> Result<String, ValuesError> {
    string_at(values, path, key)?.ok_or(ValuesError::Missing { key })
}

/// Reads the channel names of `orchestrator.channels: [{name: {restricted, ...}}]`.
fn channels(values: &Value) -> Result<Vec<String>, ValuesError> {
    let Some(list) = lookup(values, &["orchestrator", "channels"]) else {
        return Ok(Vec::new());
    };
    let wrong = |index: Option<usize>| ValuesError::WrongType {
        key: match index {
            Some(index) => format!("orchestrator.channels[{index}]"),
            None => "orchestrator.channels".to_owned(),
        },
        expected: "a list of single-key maps such as `- our-channel: {restricted: false}`",
    };
    let list = list.as_array().ok_or_else(|| wrong(None))?;
    list.iter()
        .enumerate()
        .map(|(index, item)| {
            let map = item.as_object().ok_or_else(|| wrong(Some(index)))?;
            let mut keys = map.keys();
            match (keys.next(), keys.next()) {
                (Some(name), None) => Ok(name.clone()),
                _ => Err(wrong(Some(index))),
            }
        })
        .collect()
}

/// Reads one of the `addAccountOperator` lists; an absent list is empty, as in the chart.
fn account_entries(
    values: &Value,
    list_key: &'static str,
) -> Result<Vec<AccountEntry>, ValuesError> {
    let Some(list) = lookup(values, &["addAccountOperator", list_key]) else {
        return Ok(Vec::new());
    };
    let list = list.as_array().ok_or_else(|| ValuesError::WrongType {
        key: format!("addAccountOperator.{list_key}"),
        expected: "a list of `{name, secret, channel?}` maps",
    })?;
    list.iter()
        .enumerate()
        .map(|(index, item)| {
            let field = |field: &'static str| -> Result<Option<String>, ValuesError> {
                match item.get(field) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(text)) => Ok(Some(text.clone())),
                    Some(Value::Number(number)) => Ok(Some(number.to_string())),
                    Some(_) => Err(ValuesError::WrongType {
                        key: format!("addAccountOperator.{list_key}[{index}].{field}"),
                        expected: "a string",
                    }),
                }
            };
            if !item.is_object() {
                return Err(ValuesError::WrongType {
                    key: format!("addAccountOperator.{list_key}[{index}]"),
                    expected: "a `{name, secret, channel?}` map",
                });
            }
            // The chart helper prints missing fields as empty text, so they are empty here.
            Ok(AccountEntry {
                name: field("name")?.unwrap_or_default(),
                secret: field("secret")?.unwrap_or_default(),
                channel: field("channel")?,
            })
        })
        .collect()
}

/// Reads a complete backend values document. `release_name` stands in for a missing
/// `organizationName`, which is only ever displayed.
pub fn parse_backend_values(
    release_name: &str,
    values: &Value,
) -> Result<BackendConfig, ValuesError> {
    let allowed_hosts = match lookup(values, &["config", "ALLOWED_HOSTS"]) {
        None => Vec::new(),
        Some(Value::String(text)) => serde_json::from_str::<Vec<String>>(text)
            .map_err(|_| ValuesError::AllowedHostsNotJsonList)?,
        Some(_) => return Err(ValuesError::AllowedHostsNotJsonList),
    };
    let throttle_rate = match string_at(
        values,
        &["config", "DEFAULT_THROTTLE_RATES"],
        "config.DEFAULT_THROTTLE_RATES",
    )? {
        None => DEFAULT_THROTTLE_RATE,
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| ValuesError::ThrottleRateNotNumber)?,
    };
    Ok(BackendConfig {
        organization_name: string_at(values, &["organizationName"], "organizationName")?
            .unwrap_or_else(|| release_name.to_owned()),
        msp_id: required_string(values, &["orchestrator", "mspID"], "orchestrator.mspID")?,
        channels: channels(values)?,
        // The chart default is `localhost`, which the orchestrator rejects for lack of a scheme.
        default_domain: string_at(values, &["server", "defaultDomain"], "server.defaultDomain")?
            .unwrap_or_else(|| "localhost".to_owned()),
        allowed_hosts,
        throttle_rate,
        image_tag: string_at(values, &["server", "image", "tag"], "server.image.tag")?,
        users: account_entries(values, "users")?,
        incoming_organizations: account_entries(values, "incomingOrganizations")?,
        outgoing_organizations: account_entries(values, "outgoingOrganizations")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn guide_values() -> Value {
        json!({
            "organizationName": "ingen",
            "config": {"ALLOWED_HOSTS": "[\".cluster-1.example\", \"127.0.3.1\"]", "DEFAULT_THROTTLE_RATES": "120"},
            "server": {"defaultDomain": "http://127.0.3.1:8000"},
            "orchestrator": {"mspID": "IngenMSP", "channels": [{"our-channel": {"restricted": false, "model_export_enabled": true}}]},
            "addAccountOperator": {
                "incomingOrganizations": [{"name": "BioMSP", "secret": "first-secret-value", "channel": "our-channel"}],
                "outgoingOrganizations": [{"name": "BioMSP", "secret": "second-secret-value"}]
            }
        })
    }

    #[test]
    fn reads_the_guide_shape() {
        let config = parse_backend_values("release", &guide_values()).unwrap();
        assert_eq!(config.organization_name, "ingen");
        assert_eq!(config.msp_id, "IngenMSP");
        assert_eq!(config.channels, ["our-channel"]);
        assert_eq!(config.allowed_hosts, [".cluster-1.example", "127.0.3.1"]);
        assert_eq!(config.throttle_rate, 120);
        assert!(config.users.is_empty());
        assert_eq!(
            config.incoming_organizations[0].channel.as_deref(),
            Some("our-channel")
        );
        assert_eq!(config.outgoing_organizations[0].channel, None);
    }

    #[test]
    fn defaults_apply_to_missing_keys() {
        let config =
            parse_backend_values("release", &json!({"orchestrator": {"mspID": "A"}})).unwrap();
        assert_eq!(config.organization_name, "release");
        assert_eq!(config.default_domain, "localhost");
        assert_eq!(config.throttle_rate, DEFAULT_THROTTLE_RATE);
        assert!(config.allowed_hosts.is_empty());
    }

    #[test]
    fn a_yaml_list_for_allowed_hosts_is_rejected() {
        let mut values = guide_values();
        values["config"]["ALLOWED_HOSTS"] = json!([".cluster-1.example"]);
        assert_eq!(
            parse_backend_values("r", &values),
            Err(ValuesError::AllowedHostsNotJsonList)
        );
    }

    #[test]
    fn a_missing_msp_id_is_rejected() {
        assert_eq!(
            parse_backend_values("r", &json!({})),
            Err(ValuesError::Missing {
                key: "orchestrator.mspID"
            })
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let config = parse_backend_values("release", &guide_values()).unwrap();
        let text = format!("{config:?}");
        assert!(
            !text.contains("first-secret-value") && !text.contains("second-secret-value"),
            "{text}"
        );
    }
}
