//! The errors of the simulated network: one variant per operation that failed.
//!
//! None of them carries a secret: values documents are never formatted into an error, and
//! account failures name an entry by position.

use std::net::Ipv4Addr;

use super::config::ValuesError;
use super::registry::RegistryError;
use crate::charts::ChartVersion;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen for organization {organization} on {cluster_ip}")]
    Bind {
        organization: String,
        cluster_ip: Ipv4Addr,
        #[source]
        source: std::io::Error,
    },
    #[error("organization {organization} is already bound")]
    AlreadyBound { organization: String },
    #[error("organization {organization} is not bound (hint: call bind_organization first)")]
    UnknownOrganization { organization: String },
    #[error("the simulated network is shut down")]
    ShutDown,
    #[error("the orchestrator values are invalid")]
    OrchestratorValues {
        #[source]
        source: RegistryError,
    },
    #[error("the backend values of {organization} cannot run")]
    BackendValues {
        organization: String,
        #[source]
        source: ValuesError,
    },
    /// The log is what the Job's pod printed; it never contains a secret.
    #[error("the migrations Job of {organization} (chart {chart}) failed: {log}")]
    MigrationJob {
        organization: String,
        chart: ChartVersion,
        log: String,
    },
    #[error(
        "backend {organization} never becomes ready: no orchestrator is installed to register with"
    )]
    OrchestratorNotInstalled { organization: String },
    #[error(
        "backend {organization} never becomes ready (helm --wait would time out): registering in channel {channel} failed: {reason}"
    )]
    Registration {
        organization: String,
        channel: String,
        reason: RegistryError,
    },
    #[error("cannot exec in {organization}: no backend is installed there")]
    NotInstalled { organization: String },
}
