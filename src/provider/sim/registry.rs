//! The orchestrator as far as linking needs it: channel membership, the organizations
//! registered in each channel, and what each backend's api-events has synced of them.
//!
//! A backend registers `{address: DEFAULT_DOMAIN}` once per channel at start-up (facts §2).
//! The orchestrator refuses a channel the organization is not a member of, refuses an address
//! without a scheme, and never changes an address once registered. Peers learn addresses from
//! the event stream, so a registration reaches another backend's `ChannelOrganization` table
//! only some time later; until then that backend's `get_outgoing_organization` crashes.

use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::Value;

/// One registration event: an organization joined a channel at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub msp_id: String,
    pub address: String,
    pub channel: String,
    pub registered_at: Instant,
}

/// A [`Registry`] as data, with each registration's age instead of its instant, so that a
/// copy in another process keeps the api-events sync lag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistrySnapshot {
    pub channels: IndexMap<String, Vec<String>>,
    pub registrations: Vec<RegistrationSnapshot>,
}

/// One registration of a [`RegistrySnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistrationSnapshot {
    pub msp_id: String,
    pub address: String,
    pub channel: String,
    /// How long before the snapshot the organization registered.
    pub age_ms: u64,
}

/// One row of a backend's `api_channelorganization` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOrganization {
    pub organization_id: String,
    pub address: String,
    pub channel: String,
}

/// What a registration call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutcome {
    Created,
    /// The organization was already registered in the channel; its first address stays.
    AlreadyExists,
}

/// Why the orchestrator refused something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The message of the orchestrator's channel interceptor.
    #[error("organization {msp_id:?} has not access to channel {channel:?}")]
    NoChannelAccess { msp_id: String, channel: String },
    #[error(
        "InvalidArgument: address {address:?} is not a request URL (it needs a scheme such as http://)"
    )]
    InvalidAddress { address: String },
    #[error("orchestrator values: {reason}")]
    InvalidValues { reason: String },
}

/// Whether `address` passes the orchestrator's `is.RequestURL` check, simplified to
/// `scheme://host...` with a non-empty host.
pub fn is_request_url(address: &str) -> bool {
    let Some((scheme, rest)) = address.split_once("://") else {
        return false;
    };
    let mut scheme_chars = scheme.chars();
    let is_scheme = scheme_chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    is_scheme && !host.is_empty() && !address.contains(char::is_whitespace)
}

/// Reads `channels: [{name, organizations: [msp ids]}]` from orchestrator values.
pub fn parse_orchestrator_values(
    values: &Value,
) -> Result<IndexMap<String, Vec<String>>, RegistryError> {
    let invalid = |reason: String| RegistryError::InvalidValues { reason };
    let mut channels = IndexMap::new();
    let list = match values.get("channels") {
        None | Some(Value::Null) => return Ok(channels),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(invalid(
                "`channels` must be a list of {name, organizations}".into(),
            ));
        }
    };
    for (index, channel) in list.iter().enumerate() {
        let name = channel
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("`channels[{index}].name` must be a string")))?;
        let members = match channel.get("organizations") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(members)) => members
                .iter()
                .map(|member| member.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    invalid(format!(
                        "`channels[{index}].organizations` must be a list of MSP ids"
                    ))
                })?,
            Some(_) => {
                return Err(invalid(format!(
                    "`channels[{index}].organizations` must be a list of MSP ids"
                )));
            }
        };
        channels.insert(name.to_owned(), members);
    }
    Ok(channels)
}

/// The orchestrator's state.
#[derive(Debug, Default)]
pub struct Registry {
    channels: IndexMap<String, Vec<String>>,
    registrations: Vec<Registration>,
}

impl Registry {
    pub fn new(channels: IndexMap<String, Vec<String>>) -> Self {
        Self {
            channels,
            registrations: Vec::new(),
        }
    }

    /// Replaces the channel configuration (an orchestrator upgrade); registrations stay in
    /// the orchestrator's database.
    pub fn set_channels(&mut self, channels: IndexMap<String, Vec<String>>) {
        self.channels = channels;
    }

    /// The state as of `now`.
    pub fn snapshot(&self, now: Instant) -> RegistrySnapshot {
        RegistrySnapshot {
            channels: self.channels.clone(),
            registrations: self
                .registrations
                .iter()
                .map(|registration| RegistrationSnapshot {
                    msp_id: registration.msp_id.clone(),
                    address: registration.address.clone(),
                    channel: registration.channel.clone(),
                    age_ms: now
                        .saturating_duration_since(registration.registered_at)
                        .as_millis() as u64,
                })
                .collect(),
        }
    }

    /// The registry a snapshot describes, with ages counted back from `now`.
    pub fn from_snapshot(snapshot: &RegistrySnapshot, now: Instant) -> Self {
        Self {
            channels: snapshot.channels.clone(),
            registrations: snapshot
                .registrations
                .iter()
                .map(|registration| Registration {
                    msp_id: registration.msp_id.clone(),
                    address: registration.address.clone(),
                    channel: registration.channel.clone(),
                    registered_at: now
                        .checked_sub(Duration::from_millis(registration.age_ms))
                        .unwrap_or(now),
                })
                .collect(),
        }
    }

    fn is_member(&self, msp_id: &str, channel: &str) -> bool {
        self.channels
            .get(channel)
            .is_some_and(|members| members.iter().any(|member| member == msp_id))
    }

    /// `RegisterOrganization` in one channel.
    pub fn register(
        &mut self,
        msp_id: &str,
        address: &str,
        channel: &str,
        now: Instant,
    ) -> Result<RegisterOutcome, RegistryError> {
        if !self.is_member(msp_id, channel) {
            return Err(RegistryError::NoChannelAccess {
                msp_id: msp_id.to_owned(),
                channel: channel.to_owned(),
            });
        }
        if !is_request_url(address) {
            return Err(RegistryError::InvalidAddress {
                address: address.to_owned(),
            });
        }
        if self
            .registrations
            .iter()
            .any(|registration| registration.msp_id == msp_id && registration.channel == channel)
        {
            return Ok(RegisterOutcome::AlreadyExists);
        }
        self.registrations.push(Registration {
            msp_id: msp_id.to_owned(),
            address: address.to_owned(),
            channel: channel.to_owned(),
            registered_at: now,
        });
        Ok(RegisterOutcome::Created)
    }

    /// The `ChannelOrganization` rows of a backend whose api-events consumes each channel of
    /// `subscriptions` since the given instant: an event is synced `lag` after the later of
    /// the event and the subscription.
    /// Rows only come from channels the reader is a member of: the orchestrator refuses the
    /// event stream of any other channel.
    pub fn synced_rows(
        &self,
        reader_msp_id: &str,
        subscriptions: &IndexMap<String, Instant>,
        lag: Duration,
        now: Instant,
    ) -> Vec<ChannelOrganization> {
        self.registrations
            .iter()
            .filter(|registration| {
                self.is_member(reader_msp_id, &registration.channel)
                    && subscriptions
                        .get(&registration.channel)
                        .is_some_and(|since| registration.registered_at.max(*since) + lag <= now)
            })
            .map(|registration| ChannelOrganization {
                organization_id: registration.msp_id.clone(),
                address: registration.address.clone(),
                channel: registration.channel.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    fn registry() -> Registry {
        let values = json!({"channels": [{"name": "ch", "organizations": ["A", "B"]}]});
        Registry::new(parse_orchestrator_values(&values).unwrap())
    }

    #[rstest]
    #[case("http://127.0.3.1:8000", true)]
    #[case("https://api.cluster-1.example:443", true)]
    #[case("localhost", false)]
    #[case("127.0.3.1:8000", false)]
    #[case("http://", false)]
    #[case("://host", false)]
    fn addresses_need_a_scheme(#[case] address: &str, #[case] is_valid: bool) {
        assert_eq!(is_request_url(address), is_valid);
    }

    #[test]
    fn membership_is_enforced() {
        let error = registry()
            .register("C", "http://c", "ch", Instant::now())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"organization "C" has not access to channel "ch""#
        );
    }

    #[test]
    fn the_first_address_stays() {
        let mut registry = registry();
        let now = Instant::now();
        assert_eq!(
            registry.register("A", "http://first", "ch", now),
            Ok(RegisterOutcome::Created)
        );
        assert_eq!(
            registry.register("A", "http://second", "ch", now),
            Ok(RegisterOutcome::AlreadyExists)
        );
        let subscriptions = IndexMap::from([("ch".to_owned(), now)]);
        let rows = registry.synced_rows("A", &subscriptions, Duration::ZERO, now);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].address, "http://first");
    }

    #[test]
    fn a_snapshot_keeps_channels_registrations_and_their_age() {
        let mut registry = registry();
        let start = Instant::now();
        registry.register("A", "http://a", "ch", start).unwrap();
        let later = start + Duration::from_millis(30);
        let snapshot = registry.snapshot(later);
        assert_eq!(snapshot.registrations[0].age_ms, 30);
        let mut copy = Registry::from_snapshot(&snapshot, later);
        assert_eq!(copy.channels, registry.channels);
        assert_eq!(copy.registrations, registry.registrations);
        assert!(copy.register("C", "http://c", "ch", later).is_err());
    }

    #[test]
    fn rows_appear_after_the_sync_lag_in_subscribed_channels_only() {
        let mut registry = registry();
        let start = Instant::now();
        registry.register("B", "http://b", "ch", start).unwrap();
        let lag = Duration::from_millis(50);
        let subscriptions = IndexMap::from([("ch".to_owned(), start)]);
        assert!(
            registry
                .synced_rows("A", &subscriptions, lag, start)
                .is_empty()
        );
        assert_eq!(
            registry
                .synced_rows("A", &subscriptions, lag, start + lag)
                .len(),
            1
        );
        let other = IndexMap::from([("other".to_owned(), start)]);
        assert!(
            registry
                .synced_rows("A", &other, lag, start + lag)
                .is_empty()
        );
    }
}
