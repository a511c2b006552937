//! The embedded simulator: a faithful twin of how substra-backend links organizations
//! (DESIGN §5, facts §2–§7), with no Docker, Kubernetes or Python.
//!
//! Each cluster is a loopback address (127.0.x.1) and each organization an HTTP server on its
//! own port of it, like a NodePort. [`SimNetwork::install_backend`] does what the chart and
//! its migrations Job do with one values document: render the add-account lines as the chart
//! helper does ([`accounts`]), split and apply them as that chart generation's Job does
//! (create-only before 26.12.0, create/update/delete after), and register the organization's
//! `server.defaultDomain` once per channel with the shared orchestrator ([`registry`]), which
//! enforces channel membership and never changes an address. The servers ([`server`]) check
//! `ALLOWED_HOSTS` first ([`hosts`]), answer `/info/` anonymously under DRF's anonymous
//! throttle ([`throttle`]) and `/model/` with Basic auth. [`SimNetwork::exec`] runs
//! `get_outgoing_organization` and the credential probe ([`exec`]), whose peer requests leave
//! from the caller's cluster address and fail with urllib3's texts ([`client`]).
//!
//! Not modelled: `addAccountOperator.users` (people log in with JWT, which linking never
//! uses), TLS, and every endpoint that is not on the linking path.

pub mod accounts;
pub mod backend;
pub mod client;
pub mod config;
pub mod error;
pub mod exec;
pub mod hosts;
pub mod network;
pub mod registry;
pub mod server;
pub mod throttle;

#[cfg(test)]
mod tests;

pub use error::SimError;
pub use exec::ExecOutput;
pub use network::{BackendRegistration, SimNetwork, SimOptions};
pub use registry::RegistrySnapshot;
