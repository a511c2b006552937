//! A Helm release as data, the helm commands it needs as argv, and parsers for helm's output.
//!
//! The argv builders are pure so they can be snapshot-tested for Helm 3 and Helm 4, which differ
//! in two ways that matter here (reference §7): Helm 4 deprecates `--atomic` in favour of
//! `--rollback-on-failure`, and Helm 3's `helm list` hides releases that are neither deployed nor
//! failed unless `--all` is given. `--wait` is always written bare, because on Helm 4 a separate
//! `true` after it would become a positional argument.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::process::{self, Command, Environment, ProcessError};

/// How long `helm version` and `helm list` may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Extra time given to the helm process beyond its own `--timeout`, so helm reports its own
/// timeout (with the resource it waited for) before the seam kills it.
const PROCESS_GRACE: Duration = Duration::from_secs(60);

/// One release to install or upgrade, with its complete values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub chart: ChartRef,
    pub values_file: PathBuf,
    pub kubeconfig: PathBuf,
    pub context: Option<String>,
    pub timeout: Duration,
}

/// Where a chart comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChartRef {
    /// A chart in a Helm repository, at an exact version.
    Repository {
        repository: String,
        chart: String,
        version: String,
    },
    /// A chart directory or packaged archive on disk.
    Path { path: PathBuf },
}

/// The helm client's version, as `helm version --short` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmVersion {
    pub major: u32,
    pub text: String,
}

/// One row of `helm list -o json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRelease {
    pub name: String,
    pub namespace: String,
    pub revision: u32,
    pub status: String,
    pub chart: String,
}

/// Why a helm operation failed or its output could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    #[error("`helm version --short` printed `{text}`, which is not a helm version")]
    ParseVersion { text: String },
    #[error(
        "helm {text} is not supported: install Helm 3 or 4 (https://helm.sh/docs/intro/install/)"
    )]
    UnsupportedVersion { text: String },
    #[error("could not read the output of `helm list -o json`")]
    ParseList {
        #[source]
        source: serde_json::Error,
    },
    #[error("release `{release}` has revision `{revision}`, which is not a number")]
    InvalidRevision { release: String, revision: String },
    #[error("helm version")]
    Version {
        #[source]
        source: ProcessError,
    },
    #[error("helm upgrade --install of release `{release}` in namespace `{namespace}` failed")]
    UpgradeInstall {
        release: String,
        namespace: String,
        #[source]
        source: ProcessError,
    },
    #[error("helm list in namespace `{namespace}` failed")]
    List {
        namespace: String,
        #[source]
        source: ProcessError,
    },
}

/// `helm version --short`.
pub fn version() -> Command {
    Command::new("helm").args(["version", "--short"])
}

/// `helm upgrade --install` of `release`, waiting for its resources and jobs, and rolling back
/// (or uninstalling a first install) when that fails.
pub fn upgrade_install(release: &Release, helm: &HelmVersion) -> Command {
    let mut command = Command::new("helm").args(["upgrade", "--install"]);
    command = command.arg(&release.name);
    command = match &release.chart {
        ChartRef::Repository {
            repository,
            chart,
            version,
        } => command
            .arg(chart)
            .args(["--repo", repository])
            .args(["--version", version]),
        ChartRef::Path { path } => command.arg(path_text(path)),
    };
    command = command
        .args(["-n", &release.namespace])
        .arg("--create-namespace")
        .args(["-f", &path_text(&release.values_file)]);
    command = cluster_flags(command, &release.kubeconfig, release.context.as_deref());
    command = command
        .args(["--wait", "--wait-for-jobs"])
        .args(["--timeout", &seconds(release.timeout)]);
    if helm.major >= 4 {
        command.arg("--rollback-on-failure")
    } else {
        command.arg("--atomic")
    }
}

/// `helm uninstall`, waiting until the release's resources are gone.
pub fn uninstall(name: &str, namespace: &str, kubeconfig: &Path, context: Option<&str>) -> Command {
    let command = Command::new("helm")
        .args(["uninstall", name])
        .args(["-n", namespace]);
    cluster_flags(command, kubeconfig, context).arg("--wait")
}

/// `helm list -o json` of one namespace, in every status on both Helm 3 and Helm 4.
pub fn list(
    namespace: &str,
    kubeconfig: &Path,
    context: Option<&str>,
    helm: &HelmVersion,
) -> Command {
    let mut command = Command::new("helm")
        .arg("list")
        .args(["-n", namespace])
        .args(["-o", "json"]);
    if helm.major < 4 {
        command = command.arg("--all");
    }
    cluster_flags(command, kubeconfig, context)
}

/// `helm status -o json` of one release.
pub fn status(name: &str, namespace: &str, kubeconfig: &Path, context: Option<&str>) -> Command {
    let command = Command::new("helm")
        .args(["status", name])
        .args(["-n", namespace])
        .args(["-o", "json"]);
    cluster_flags(command, kubeconfig, context)
}

fn cluster_flags(command: Command, kubeconfig: &Path, context: Option<&str>) -> Command {
    let command = command.args(["--kubeconfig", &path_text(kubeconfig)]);
    match context {
        Some(context) => command.args(["--kube-context", context]),
        None => command,
    }
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Helm's duration syntax in whole seconds, at least one.
fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs().max(1))
}

/// Reads `helm version --short`, e.g. `v3.21.4+g5c1f8b2` or `v4.2.4+g0a1b2c3`.
pub fn parse_version(short: &str) -> Result<HelmVersion, HelmError> {
    let text = short.trim();
    let parse_error = || HelmError::ParseVersion {
        text: text.to_owned(),
    };
    let major = text
        .strip_prefix('v')
        .and_then(|rest| rest.split('.').next())
        .and_then(|major| major.parse::<u32>().ok())
        .ok_or_else(parse_error)?;
    if !(3..=4).contains(&major) {
        return Err(HelmError::UnsupportedVersion {
            text: text.to_owned(),
        });
    }
    Ok(HelmVersion {
        major,
        text: text.to_owned(),
    })
}

#[derive(Deserialize)]
struct RawListedRelease {
    name: String,
    namespace: String,
    revision: RawRevision,
    status: String,
    chart: String,
}

/// Helm prints the revision as a string; a number is accepted too.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawRevision {
    Number(u32),
    Text(String),
}

/// Reads `helm list -o json`: an array of releases, `[]` when there are none.
pub fn parse_list(json: &str) -> Result<Vec<ListedRelease>, HelmError> {
    let raw: Vec<RawListedRelease> =
        serde_json::from_str(json).map_err(|source| HelmError::ParseList { source })?;
    raw.into_iter()
        .map(|release| {
            let revision = match release.revision {
                RawRevision::Number(number) => number,
                RawRevision::Text(text) => {
                    text.trim()
                        .parse()
                        .map_err(|_| HelmError::InvalidRevision {
                            release: release.name.clone(),
                            revision: text.clone(),
                        })?
                }
            };
            Ok(ListedRelease {
                name: release.name,
                namespace: release.namespace,
                revision,
                status: release.status,
                chart: release.chart,
            })
        })
        .collect()
}

/// Asks the helm on PATH for its version.
pub async fn detect_version(environment: &Environment) -> Result<HelmVersion, HelmError> {
    let output = process::run(&environment.apply(version()), QUERY_TIMEOUT)
        .await
        .map_err(|source| HelmError::Version { source })?;
    parse_version(&output.stdout)
}

/// Installs or upgrades `release` and waits for it.
pub async fn install(
    environment: &Environment,
    release: &Release,
    helm: &HelmVersion,
) -> Result<(), HelmError> {
    let command = environment.apply(upgrade_install(release, helm));
    process::run(&command, release.timeout + PROCESS_GRACE)
        .await
        .map_err(|source| HelmError::UpgradeInstall {
            release: release.name.clone(),
            namespace: release.namespace.clone(),
            source,
        })?;
    Ok(())
}

/// The releases in `namespace`, in every status.
pub async fn list_releases(
    environment: &Environment,
    namespace: &str,
    kubeconfig: &Path,
    context: Option<&str>,
    helm: &HelmVersion,
) -> Result<Vec<ListedRelease>, HelmError> {
    let command = environment.apply(list(namespace, kubeconfig, context, helm));
    let output = process::run(&command, QUERY_TIMEOUT)
        .await
        .map_err(|source| HelmError::List {
            namespace: namespace.to_owned(),
            source,
        })?;
    parse_list(&output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn helm(major: u32) -> HelmVersion {
        HelmVersion {
            major,
            text: format!("v{major}.0.0"),
        }
    }

    fn release(chart: ChartRef, context: Option<&str>) -> Release {
        Release {
            name: "backend-ingen".to_owned(),
            namespace: "org-ingen".to_owned(),
            chart,
            values_file: PathBuf::from("/run/values/backend-ingen.yaml"),
            kubeconfig: PathBuf::from("/run/kubeconfig/cluster-a"),
            context: context.map(str::to_owned),
            timeout: Duration::from_secs(600),
        }
    }

    fn repository_chart() -> ChartRef {
        ChartRef::Repository {
            repository: "https://substra.github.io/charts/".to_owned(),
            chart: "substra-backend".to_owned(),
            version: "26.12.0".to_owned(),
        }
    }

    #[rstest]
    #[case::helm3(3)]
    #[case::helm4(4)]
    fn upgrade_install_from_a_repository(#[case] major: u32) {
        let command = upgrade_install(&release(repository_chart(), None), &helm(major));
        insta::assert_yaml_snapshot!(
            format!("upgrade_install_repository_helm{major}"),
            command.argv()
        );
    }

    #[rstest]
    #[case::helm3(3)]
    #[case::helm4(4)]
    fn upgrade_install_from_a_path_with_a_context(#[case] major: u32) {
        let chart = ChartRef::Path {
            path: PathBuf::from("/charts/orchestrator"),
        };
        let command = upgrade_install(&release(chart, Some("kind-orgmesh-r1-a")), &helm(major));
        insta::assert_yaml_snapshot!(format!("upgrade_install_path_helm{major}"), command.argv());
    }

    #[rstest]
    #[case::helm3(3)]
    #[case::helm4(4)]
    fn wait_is_never_followed_by_a_value(#[case] major: u32) {
        let argv = upgrade_install(&release(repository_chart(), None), &helm(major)).argv();
        let position = argv.iter().position(|word| word == "--wait").unwrap();
        assert!(argv[position + 1].starts_with("--"));
        assert!(!argv.iter().any(|word| word == "true"));
    }

    #[rstest]
    #[case::helm3(3)]
    #[case::helm4(4)]
    fn list_argv(#[case] major: u32) {
        let command = list(
            "org-ingen",
            Path::new("/run/kubeconfig/cluster-a"),
            Some("kind-orgmesh-r1-a"),
            &helm(major),
        );
        insta::assert_yaml_snapshot!(format!("list_helm{major}"), command.argv());
    }

    #[test]
    fn uninstall_status_and_version_argv() {
        let kubeconfig = Path::new("/run/kubeconfig/cluster-a");
        insta::assert_yaml_snapshot!(
            "uninstall",
            uninstall("backend-ingen", "org-ingen", kubeconfig, None).argv()
        );
        insta::assert_yaml_snapshot!(
            "status",
            status("backend-ingen", "org-ingen", kubeconfig, Some("kind-x")).argv()
        );
        assert_eq!(version().argv(), ["helm", "version", "--short"]);
    }

    #[rstest]
    #[case::helm3("v3.21.4+g5c1f8b2\n", 3)]
    #[case::helm4("v4.2.4+g0a1b2c3", 4)]
    fn parses_supported_versions(#[case] short: &str, #[case] major: u32) {
        let version = parse_version(short).unwrap();
        assert_eq!(version.major, major);
        assert_eq!(version.text, short.trim());
    }

    #[rstest]
    #[case::helm2("v2.17.0+ga690bad", true)]
    #[case::garbage("helm: command output", false)]
    #[case::empty("", false)]
    fn rejects_other_versions(#[case] short: &str, #[case] is_unsupported: bool) {
        let error = parse_version(short).unwrap_err();
        assert_eq!(
            matches!(error, HelmError::UnsupportedVersion { .. }),
            is_unsupported
        );
    }

    #[test]
    fn parses_list_with_string_revisions() {
        let json = r#"[{"name":"backend-ingen","namespace":"org-ingen","revision":"2",
            "updated":"2026-01-16 00:00:00.1 +0000 UTC","status":"deployed",
            "chart":"substra-backend-26.12.0","app_version":"1.0.0"},
            {"name":"orchestrator","namespace":"org-ingen","revision":3,
            "updated":"","status":"pending-upgrade","chart":"orchestrator-9.0.0","app_version":""}]"#;
        let releases = parse_list(json).unwrap();
        assert_eq!(
            releases,
            [
                ListedRelease {
                    name: "backend-ingen".to_owned(),
                    namespace: "org-ingen".to_owned(),
                    revision: 2,
                    status: "deployed".to_owned(),
                    chart: "substra-backend-26.12.0".to_owned(),
                },
                ListedRelease {
                    name: "orchestrator".to_owned(),
                    namespace: "org-ingen".to_owned(),
                    revision: 3,
                    status: "pending-upgrade".to_owned(),
                    chart: "orchestrator-9.0.0".to_owned(),
                },
            ]
        );
        assert_eq!(parse_list("[]\n").unwrap(), []);
    }

    #[test]
    fn rejects_a_bad_list() {
        assert!(matches!(
            parse_list("not json"),
            Err(HelmError::ParseList { .. })
        ));
        let json =
            r#"[{"name":"a","namespace":"b","revision":"x","status":"deployed","chart":"c"}]"#;
        assert!(matches!(
            parse_list(json),
            Err(HelmError::InvalidRevision { .. })
        ));
    }
}
