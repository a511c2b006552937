//! The values layers a Kubernetes provider adds to each release (facts §2, §4, §9): how a
//! backend is reached across clusters, which hosts it accepts, where its orchestrator is, and
//! a lean footprint so that several organizations fit on one machine. Pure.
//!
//! Across kind clusters a backend is addressed `http://<node InternalIP>:<nodePort>`: the
//! node IP is already in the backend's ALLOWED_HOSTS through `HOST_IP`, and is listed
//! explicitly too so that the values say what they rely on. Hairpin and self calls through a
//! NodePort land on a private pod address, which the chart's network policies only allow with
//! `server.allowLocalRequests`.
//!
//! k3s clusters get the same layers: each node is a container, and its InternalIP is the
//! container's address on the run's Docker network, which the other clusters' pods and the
//! harness reach just as they reach a kind node. k3s enforces network policies too, and its
//! cluster domain is `cluster.local`, so nothing here differs.

use serde_json::{Value, json};

/// The first NodePort given to backends; organizations in one cluster get consecutive ports.
pub const BACKEND_NODE_PORT_BASE: u16 = 30800;
/// The orchestrator's gRPC NodePort.
pub const ORCHESTRATOR_NODE_PORT: u16 = 30900;
/// The orchestrator's in-cluster service (release `orchestrator` in namespace `orchestrator`:
/// the chart names it `<release>-server` because the release name contains "orchestrator").
pub const ORCHESTRATOR_SERVICE_HOST: &str = "orchestrator-server.orchestrator.svc.cluster.local";
/// The orchestrator's in-cluster service port.
pub const ORCHESTRATOR_SERVICE_PORT: u16 = 9000;

/// Where a backend finds the orchestrator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrchestratorEndpoint {
    pub host: String,
    pub port: u16,
    /// The backend runs in the orchestrator's cluster: it uses the service name, and the
    /// chart's network policy allows the in-cluster address.
    pub same_cluster: bool,
}

impl OrchestratorEndpoint {
    /// The endpoint for a backend in `cluster`, given the orchestrator's cluster and node IP.
    pub fn for_cluster(
        cluster: &str,
        orchestrator_cluster: &str,
        orchestrator_node_ip: &str,
    ) -> Self {
        if cluster == orchestrator_cluster {
            Self {
                host: ORCHESTRATOR_SERVICE_HOST.to_owned(),
                port: ORCHESTRATOR_SERVICE_PORT,
                same_cluster: true,
            }
        } else {
            Self {
                host: orchestrator_node_ip.to_owned(),
                port: ORCHESTRATOR_NODE_PORT,
                same_cluster: false,
            }
        }
    }
}

/// Image repositories for the Bitnami subcharts, for registries that moved their tags
/// (`docker.io/bitnami/*` → `docker.io/bitnamilegacy/*`, facts §9). `None` keeps the chart's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageOverrides {
    pub postgresql: Option<String>,
    pub redis: Option<String>,
    pub minio: Option<String>,
}

/// A small request for components that must run but do little in a linking test.
fn small(cpu: &str, memory: &str) -> Value {
    json!({"requests": {"cpu": cpu, "memory": memory}})
}

/// The provider layer of a backend's values on kind (and k3s): NodePort service, address,
/// allowed hosts, orchestrator endpoint, compute components off, small requests.
pub fn kind_backend(
    namespace: &str,
    node_ip: &str,
    node_port: u16,
    orchestrator: &OrchestratorEndpoint,
    images: &ImageOverrides,
) -> Value {
    let allowed_hosts = json!([
        node_ip,
        format!(".{namespace}"),
        format!(".{namespace}.svc.cluster.local")
    ]);
    let mut values = json!({
        "server": {
            "defaultDomain": format!("http://{node_ip}:{node_port}"),
            "allowLocalRequests": true,
            "service": {"type": "NodePort", "nodePort": node_port},
            // The chart attaches `nodePort` to the last port: keep the metrics port away.
            "metrics": {"enabled": false},
            "resources": small("50m", "256Mi"),
        },
        "config": {"ALLOWED_HOSTS": allowed_hosts.to_string()},
        "orchestrator": {
            "host": orchestrator.host,
            "port": orchestrator.port,
            "sameCluster": orchestrator.same_cluster,
        },
        "worker": {"enabled": false},
        "builder": {"enabled": false},
        "scheduler": {"enabled": false},
        "schedulerWorker": {"enabled": false},
        "api": {"events": {"resources": small("10m", "64Mi")}},
        "postgresql": {"primary": {"resources": small("10m", "64Mi")}},
        "redis": {"master": {"resources": small("10m", "32Mi")}},
        "minio": {"resources": small("10m", "64Mi")},
        "docker-registry": {"resources": small("10m", "32Mi")},
    });
    let overrides = [
        (&images.postgresql, "/postgresql"),
        (&images.redis, "/redis"),
        (&images.minio, "/minio"),
    ];
    for (repository, pointer) in overrides {
        if let Some(repository) = repository
            && let Some(Value::Object(section)) = values.pointer_mut(pointer)
        {
            section.insert("image".into(), json!({"repository": repository}));
        }
    }
    values
}

/// The provider layer of the orchestrator's values on kind: its gRPC service as a NodePort,
/// so that backends in other clusters reach it at the node IP.
pub fn kind_orchestrator() -> Value {
    json!({"service": {"type": "NodePort", "nodePort": ORCHESTRATOR_NODE_PORT}})
}

/// The NodePort of the `index`-th organization (0-based) within its cluster.
pub fn backend_node_port(index_in_cluster: usize) -> u16 {
    BACKEND_NODE_PORT_BASE.saturating_add(index_in_cluster as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orchestrator_is_reached_by_service_name_in_its_own_cluster_only() {
        let same = OrchestratorEndpoint::for_cluster("c1", "c1", "172.18.0.2");
        assert_eq!(
            (same.host.as_str(), same.port, same.same_cluster),
            (ORCHESTRATOR_SERVICE_HOST, 9000, true)
        );
        let other = OrchestratorEndpoint::for_cluster("c2", "c1", "172.18.0.2");
        assert_eq!(
            (other.host.as_str(), other.port, other.same_cluster),
            ("172.18.0.2", 30900, false)
        );
    }

    #[test]
    fn image_overrides_land_in_the_subcharts() {
        let images = ImageOverrides {
            postgresql: Some("bitnamilegacy/postgresql".into()),
            redis: None,
            minio: Some("bitnamilegacy/minio".into()),
        };
        let endpoint = OrchestratorEndpoint::for_cluster("c1", "c1", "x");
        let values = kind_backend("ingen", "172.18.0.3", 30800, &endpoint, &images);
        assert_eq!(
            values.pointer("/postgresql/image/repository"),
            Some(&json!("bitnamilegacy/postgresql"))
        );
        assert_eq!(values.pointer("/redis/image"), None);
        assert_eq!(
            values.pointer("/minio/image/repository"),
            Some(&json!("bitnamilegacy/minio"))
        );
        assert_eq!(
            values.pointer("/postgresql/primary/resources/requests/cpu"),
            Some(&json!("10m"))
        );
    }
}
