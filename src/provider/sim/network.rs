//! [`SimNetwork`]: organizations, their listeners, the shared orchestrator and the faults
//! between clusters, behind the operations a provider needs (install, exec, partition).
//!
//! State lives behind std locks that are only held for bookkeeping; every await (accepting,
//! peer requests) happens with no lock held, so a hundred organizations can talk at once.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::accounts::random_salt;
use super::backend::{Installed, Organization};
use super::config::parse_backend_values;
use super::error::SimError;
use super::exec::{ExecContext, ExecOutput, parse_command, run};
use super::hosts::allowed_hosts;
use super::registry::{Registry, RegistrySnapshot, parse_orchestrator_values};
use super::server::serve;
use crate::charts::ChartVersion;

/// The image tag whose migrations Job lacks the `sync_*` commands (facts §8).
const IMAGE_WITHOUT_SYNC_COMMANDS: &str = "0.48.0";

/// Peer requests in flight at once across the whole network. Each holds two sockets (client
/// and server side), so this stays far below a default limit of 1024 open files while still
/// keeping both cores busy.
const CONCURRENT_REQUESTS: usize = 256;

/// What a backend registers with the orchestrator when it starts: its address, in each of its
/// channels.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackendRegistration {
    pub organization: String,
    pub msp_id: String,
    pub address: String,
    pub channels: Vec<String>,
}

/// How the simulated backends behave in time.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// How long after an organization registers with the orchestrator before peers' api-events
    /// have synced it (real backends: seconds). Until then the outgoing table crashes with KeyError.
    pub sync_lag: Duration,
    /// HTTP_CLIENT_TIMEOUT_SECONDS of the backends: the client timeout for peer requests.
    pub http_client_timeout: Duration,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            sync_lag: Duration::from_millis(50),
            http_client_timeout: Duration::from_secs(5),
        }
    }
}

struct Inner {
    options: SimOptions,
    organizations: RwLock<IndexMap<String, Arc<Organization>>>,
    registry: RwLock<Option<Registry>>,
    partitions: RwLock<HashSet<(Ipv4Addr, Ipv4Addr)>>,
    shutdown: watch::Sender<bool>,
    servers: Mutex<Vec<JoinHandle<()>>>,
    /// Each organization's listener task, to stop serving it on uninstall.
    listeners: Mutex<std::collections::HashMap<String, tokio::task::AbortHandle>>,
    request_permits: Arc<Semaphore>,
}

/// The embedded twin of a Substra network. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct SimNetwork {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SimNetwork {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SimNetwork")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl SimNetwork {
    pub fn new(options: SimOptions) -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                options,
                organizations: RwLock::new(IndexMap::new()),
                registry: RwLock::new(None),
                partitions: RwLock::new(HashSet::new()),
                shutdown,
                servers: Mutex::new(Vec::new()),
                listeners: Mutex::new(std::collections::HashMap::new()),
                request_permits: Arc::new(Semaphore::new(CONCURRENT_REQUESTS)),
            }),
        }
    }

    fn is_shut_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    fn organization(&self, organization: &str) -> Result<Arc<Organization>, SimError> {
        self.inner
            .organizations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(organization)
            .cloned()
            .ok_or_else(|| SimError::UnknownOrganization {
                organization: organization.to_owned(),
            })
    }

    /// Binds a TCP listener for the organization on `cluster_ip:0` (a loopback address like
    /// 127.0.3.1: all of 127/8 is loopback on Linux) and starts serving it. Returns the address,
    /// e.g. "http://127.0.3.1:41234". Before the backend is installed, requests get 503.
    pub async fn bind_organization(
        &self,
        organization: &str,
        cluster_ip: Ipv4Addr,
    ) -> Result<String, SimError> {
        self.bind_organization_at(organization, cluster_ip, 0).await
    }

    /// Like [`Self::bind_organization`], on a chosen port (a NodePort, when the simulator
    /// stands in for a cluster's pods); port 0 picks a free one.
    pub async fn bind_organization_at(
        &self,
        organization: &str,
        cluster_ip: Ipv4Addr,
        port: u16,
    ) -> Result<String, SimError> {
        if self.is_shut_down() {
            return Err(SimError::ShutDown);
        }
        let already_bound = || SimError::AlreadyBound {
            organization: organization.to_owned(),
        };
        if self.organization(organization).is_ok() {
            return Err(already_bound());
        }
        let bind_error = |source| SimError::Bind {
            organization: organization.to_owned(),
            cluster_ip,
            source,
        };
        let listener = TcpListener::bind(SocketAddr::from((cluster_ip, port)))
            .await
            .map_err(bind_error)?;
        let listen_address = listener.local_addr().map_err(bind_error)?;
        let state = Arc::new(Organization::new(
            organization.to_owned(),
            cluster_ip,
            listen_address,
        ));
        {
            let mut organizations = self
                .inner
                .organizations
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if organizations.contains_key(organization) {
                return Err(already_bound());
            }
            organizations.insert(organization.to_owned(), Arc::clone(&state));
        }
        let server = tokio::spawn(serve(listener, state, self.inner.shutdown.subscribe()));
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(organization.to_owned(), server.abort_handle());
        self.inner
            .servers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(server);
        Ok(format!("http://{listen_address}"))
    }

    /// `helm upgrade --install` of the orchestrator: reads `channels: [{name, organizations: [msp ids]}]`.
    ///
    /// An upgrade replaces the channel configuration at once (a real orchestrator needs a
    /// rollout restart for that) and keeps every registration.
    pub async fn install_orchestrator(&self, values: &serde_json::Value) -> Result<(), SimError> {
        let channels = parse_orchestrator_values(values)
            .map_err(|source| SimError::OrchestratorValues { source })?;
        let mut registry = self
            .inner
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match registry.as_mut() {
            Some(registry) => registry.set_channels(channels),
            None => *registry = Some(Registry::new(channels)),
        }
        Ok(())
    }

    /// `helm upgrade --install` of one backend with ONE complete values document (chart keys).
    /// First call = install, later calls = upgrade. Does what the chart + migrations Job do.
    pub async fn install_backend(
        &self,
        organization: &str,
        chart: ChartVersion,
        values: &serde_json::Value,
    ) -> Result<(), SimError> {
        let registration = self.apply_backend(organization, chart, values).await?;
        self.register_backend(&registration, Instant::now())
    }

    /// The part of [`Self::install_backend`] that happens in the organization's own cluster:
    /// the migrations Job's accounts and the api-events subscriptions. Returns what the
    /// backend then registers with the orchestrator, wherever that runs.
    pub async fn apply_backend(
        &self,
        organization: &str,
        chart: ChartVersion,
        values: &serde_json::Value,
    ) -> Result<BackendRegistration, SimError> {
        if self.is_shut_down() {
            return Err(SimError::ShutDown);
        }
        let state = self.organization(organization)?;
        let config = parse_backend_values(organization, values).map_err(|source| {
            SimError::BackendValues {
                organization: organization.to_owned(),
                source,
            }
        })?;
        let job_failed = |log: String| SimError::MigrationJob {
            organization: organization.to_owned(),
            chart,
            log,
        };
        let is_default_image = config
            .image_tag
            .as_deref()
            .is_none_or(|tag| tag == IMAGE_WITHOUT_SYNC_COMMANDS);
        if chart.has_missing_sync_commands() && is_default_image {
            return Err(job_failed(
                "Unknown command: 'sync_users'\nType 'manage.py help' for usage.".to_owned(),
            ));
        }
        let now = Instant::now();
        let mut backend = state.state_mut();
        backend
            .accounts
            .apply(
                &config.incoming_organizations,
                &config.outgoing_organizations,
                chart.account_sync(),
                &mut random_salt,
            )
            .map_err(|error| job_failed(error.to_string()))?;
        for channel in &config.channels {
            backend.subscriptions.entry(channel.clone()).or_insert(now);
        }
        let allowed_hosts = allowed_hosts(&config.allowed_hosts, state.cluster_ip);
        let registration = BackendRegistration {
            organization: organization.to_owned(),
            msp_id: config.msp_id.clone(),
            address: config.default_domain.clone(),
            channels: config.channels.clone(),
        };
        backend.installed = Some(Arc::new(Installed {
            chart,
            config,
            allowed_hosts,
        }));
        Ok(registration)
    }

    /// The backend's start-up registration with this network's orchestrator, once per channel.
    pub fn register_backend(
        &self,
        registration: &BackendRegistration,
        now: Instant,
    ) -> Result<(), SimError> {
        let mut registry = self
            .inner
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(registry) = registry.as_mut() else {
            return Err(SimError::OrchestratorNotInstalled {
                organization: registration.organization.clone(),
            });
        };
        for channel in &registration.channels {
            registry
                .register(&registration.msp_id, &registration.address, channel, now)
                .map_err(|reason| SimError::Registration {
                    organization: registration.organization.clone(),
                    channel: channel.clone(),
                    reason,
                })?;
        }
        Ok(())
    }

    /// The orchestrator's state as of `now`, to mirror it elsewhere.
    pub fn registry_snapshot(&self, now: Instant) -> Option<RegistrySnapshot> {
        self.inner
            .registry
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|registry| registry.snapshot(now))
    }

    /// Replaces this network's orchestrator with a mirror of another's (container isolation:
    /// the orchestrator lives with the harness, every cluster's backends read a copy).
    pub fn mirror_registry(&self, snapshot: &RegistrySnapshot, now: Instant) {
        *self
            .inner
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Registry::from_snapshot(snapshot, now));
    }

    /// `helm uninstall` of one backend: its server stops listening (peers that still list it
    /// get a connection error), its database is gone. Its registrations stay with the
    /// orchestrator, as a real orchestrator keeps them. The organization stays known, so
    /// `exec` in it fails with [`SimError::NotInstalled`].
    pub async fn uninstall_backend(&self, organization: &str) -> Result<(), SimError> {
        let state = self.organization(organization)?;
        let listener = self
            .inner
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(organization);
        if let Some(listener) = listener {
            listener.abort();
        }
        let mut backend = state.state_mut();
        backend.installed = None;
        backend.accounts = Default::default();
        backend.subscriptions.clear();
        Ok(())
    }

    /// `kubectl exec` in the organization's server container: returns stdout, stderr, exit code.
    pub async fn exec(&self, organization: &str, argv: &[String]) -> Result<ExecOutput, SimError> {
        let state = self.organization(organization)?;
        let context = {
            let backend = state.state();
            let Some(installed) = backend.installed.as_ref() else {
                return Err(SimError::NotInstalled {
                    organization: organization.to_owned(),
                });
            };
            let msp_id = installed.config.msp_id.clone();
            let channel_organizations = self
                .inner
                .registry
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|registry| {
                    registry.synced_rows(
                        &msp_id,
                        &backend.subscriptions,
                        self.inner.options.sync_lag,
                        Instant::now(),
                    )
                })
                .unwrap_or_default();
            ExecContext {
                msp_id,
                source: state.cluster_ip,
                outgoing: backend
                    .accounts
                    .outgoing
                    .iter()
                    .map(|(id, secret)| (id.clone(), secret.clone()))
                    .collect(),
                channel_organizations,
                partitions: self
                    .inner
                    .partitions
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
                timeout: self.inner.options.http_client_timeout,
                request_permits: Arc::clone(&self.inner.request_permits),
            }
        };
        Ok(run(parse_command(argv), &context).await)
    }

    /// Drops traffic from every address on cluster `from` to every address on cluster `to`, one direction.
    ///
    /// Only connections opened from `from` to `to` fail: the replies of a connection opened
    /// the other way are not dropped (a real packet filter would drop them too, making both
    /// directions fail).
    pub fn partition(&self, from: Ipv4Addr, to: Ipv4Addr) {
        self.inner
            .partitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((from, to));
    }

    /// Undoes [`SimNetwork::partition`] for one direction.
    pub fn heal(&self, from: Ipv4Addr, to: Ipv4Addr) {
        self.inner
            .partitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(from, to));
    }

    /// The socket an organization's server listens on, if it is bound.
    pub fn listen_address(&self, organization: &str) -> Option<SocketAddr> {
        self.organization(organization)
            .ok()
            .map(|state| state.listen_address)
    }

    /// Stops every listener and connection task; afterwards nothing of the sim listens. Idempotent.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let servers: Vec<JoinHandle<()>> = std::mem::take(
            &mut *self
                .inner
                .servers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for server in servers {
            // A server task only ends by returning; a panic in it has nothing left to clean.
            let _ = server.await;
        }
    }
}
