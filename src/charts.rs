//! Known substra-backend and orchestrator chart versions and what they imply for linking.
//!
//! The add-account mechanism changed several times (facts §3, §7, §8): which lines a values
//! file turns into, how they are split, and whether an upgrade updates or only creates
//! accounts all depend on the backend chart version. The simulator and the derived
//! expectations both read it from here.

use std::fmt;
use std::str::FromStr;

/// The backend chart version used when a scenario names none: the latest known-good pair.
pub const DEFAULT_BACKEND_CHART: &str = "26.15.3";
/// The orchestrator chart version used when a scenario names none.
pub const DEFAULT_ORCHESTRATOR_CHART: &str = "8.8.0";
/// Where Substra publishes its charts.
pub const DEFAULT_CHART_REPO: &str = "https://substra.github.io/charts";

/// A chart version `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChartVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ChartVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// How the migrations Job of this backend chart turns add-account lines into accounts.
    pub fn account_sync(self) -> AccountSync {
        if self >= Self::new(26, 12, 0) {
            AccountSync::Sync
        } else if self >= Self::new(26, 6, 6) {
            AccountSync::CreateLastWord
        } else {
            AccountSync::CreateFirstWord
        }
    }

    /// The backend image tag the chart deploys by default (its `appVersion`).
    pub fn backend_app_version(self) -> &'static str {
        if self >= Self::new(26, 15, 2) {
            "1.0.1"
        } else if self >= Self::new(26, 14, 2) {
            "1.0.0"
        } else if self >= Self::new(26, 9, 1) {
            "0.48.0"
        } else if self >= Self::new(26, 7, 2) {
            "0.47.0"
        } else {
            "0.45.0"
        }
    }

    /// Whether the chart's migrations Job calls `sync_*` commands that its default image lacks
    /// (charts 26.12.0 to 26.14.1 ship app 0.48.0, facts §8): install and upgrade then fail.
    pub fn has_missing_sync_commands(self) -> bool {
        self.account_sync() == AccountSync::Sync && self.backend_app_version() == "0.48.0"
    }

    /// The oldest backend chart with a migrations Job and the `incomingOrganizations` key.
    pub const OLDEST_SUPPORTED_BACKEND: Self = Self::new(18, 2, 0);
}

/// How add-account lines become accounts, by backend chart version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountSync {
    /// 18.2.0 – 26.6.5: `read user password <<< "$line"`: the first word is the id, the rest is
    /// the password; existing accounts are left alone (create-only).
    CreateFirstWord,
    /// 26.6.6 – 26.11.0: the last word is the password, the rest the id; create-only.
    CreateLastWord,
    /// 26.12.0 and later (#999): `rsplit(" ", 1)`; create, update and delete.
    Sync,
}

impl fmt::Display for ChartVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The error for a chart version that is not `MAJOR.MINOR.PATCH`.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a chart version of the form MAJOR.MINOR.PATCH")]
pub struct ParseChartVersionError(pub String);

impl FromStr for ChartVersion {
    type Err = ParseChartVersionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseChartVersionError(text.to_owned());
        let mut parts = text.trim_start_matches('v').split('.');
        let mut next = || -> Result<u32, ParseChartVersionError> {
            let part = parts.next().ok_or_else(error)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error());
            }
            part.parse().map_err(|_| error())
        };
        let version = Self::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(error());
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("26.15.3", AccountSync::Sync, "1.0.1", false)]
    #[case("26.14.2", AccountSync::Sync, "1.0.0", false)]
    #[case("26.14.1", AccountSync::Sync, "0.48.0", true)]
    #[case("26.12.0", AccountSync::Sync, "0.48.0", true)]
    #[case("26.11.0", AccountSync::CreateLastWord, "0.48.0", false)]
    #[case("26.9.1", AccountSync::CreateLastWord, "0.48.0", false)]
    #[case("26.6.5", AccountSync::CreateFirstWord, "0.45.0", false)]
    fn versions_map_to_their_account_mechanism(
        #[case] text: &str,
        #[case] sync: AccountSync,
        #[case] app: &str,
        #[case] broken: bool,
    ) {
        let version: ChartVersion = text.parse().unwrap();
        assert_eq!(version.to_string(), text);
        assert_eq!(version.account_sync(), sync);
        assert_eq!(version.backend_app_version(), app);
        assert_eq!(version.has_missing_sync_commands(), broken);
    }

    #[rstest]
    #[case("26.15")]
    #[case("26.15.3.1")]
    #[case("26.x.3")]
    #[case("")]
    #[case("26..3")]
    fn malformed_versions_are_rejected(#[case] text: &str) {
        assert!(text.parse::<ChartVersion>().is_err());
    }
}
