//! The state of one simulated organization: its listener address, the installed release and
//! the backend database (accounts, synced channels) that survives upgrades.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use indexmap::IndexMap;

use super::accounts::AccountStore;
use super::config::BackendConfig;
use super::throttle::Throttle;
use crate::charts::ChartVersion;

/// What the current Helm release configures.
#[derive(Debug)]
pub struct Installed {
    pub chart: ChartVersion,
    pub config: BackendConfig,
    /// The full Django list: built-ins, `config.ALLOWED_HOSTS`, then `HOST_IP`.
    pub allowed_hosts: Vec<String>,
}

/// The backend's database and current release. A release swap replaces `installed`; the
/// database rows change only through the migrations Job and api-events.
#[derive(Debug, Default)]
pub struct BackendState {
    pub installed: Option<Arc<Installed>>,
    pub accounts: AccountStore,
    /// When api-events started consuming each channel it was ever configured with.
    pub subscriptions: IndexMap<String, Instant>,
}

/// One organization of the simulated network.
#[derive(Debug)]
pub struct Organization {
    pub name: String,
    pub cluster_ip: Ipv4Addr,
    pub listen_address: SocketAddr,
    state: RwLock<BackendState>,
    /// The throttle cache (Redis in a real backend) outlives releases.
    throttle: Mutex<Throttle>,
}

impl Organization {
    pub fn new(name: String, cluster_ip: Ipv4Addr, listen_address: SocketAddr) -> Self {
        Self {
            name,
            cluster_ip,
            listen_address,
            state: RwLock::new(BackendState::default()),
            throttle: Mutex::new(Throttle::default()),
        }
    }

    // A panic while a lock is held cannot leave these tables half-written in a way that
    // matters more than losing the whole simulation, so poisoning is ignored.
    pub fn state(&self) -> RwLockReadGuard<'_, BackendState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn state_mut(&self) -> RwLockWriteGuard<'_, BackendState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn throttle(&self) -> MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn installed(&self) -> Option<Arc<Installed>> {
        self.state().installed.clone()
    }
}
