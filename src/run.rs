//! The asynchronous executor: a scenario's plan against a provider, with events for the
//! reporters and a LIFO teardown that always runs (DESIGN §1, STYLE rule 8).
//!
//! The runner decides nothing from the reporters: it emits [`Event`]s and collects check
//! results into a [`Report`]. A failed check is a result, not an error; errors are for the
//! infrastructure (exit 3), bad input (exit 2) and interruption (exit 130).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use crate::charts::{AccountSync, ChartVersion};
use crate::cli::{create_private_dir, write_private_file, yaml};
use crate::error::Error;
use crate::plan::{Plan, Step};
use crate::provider::{Isolation, Provider, sim::SimOptions};
use crate::report::{self, Action, Charts, CheckResult, Event, Outcome, Phase, Report};
use crate::scenario::{AuthOutcome, Fault, ProviderName, Scenario};
use crate::secrets::{self, LinkSecrets, Rotated, Secret, SecretSource};
use crate::topology::Topology;
use crate::values::{self, BackendValues};
use crate::verify::{
    self, LastOutputs, Pacer, RevokedTarget, RotationTarget, Source, Target, VerifyOptions,
    check_revoked, check_rotation,
};

/// A cancellation signal shared by the runner and the Ctrl-C handler.
#[derive(Clone, Debug)]
pub struct Cancel {
    sender: Arc<watch::Sender<bool>>,
    receiver: watch::Receiver<bool>,
}

impl Default for Cancel {
    fn default() -> Self {
        let (sender, receiver) = watch::channel(false);
        Self {
            sender: Arc::new(sender),
            receiver,
        }
    }
}

impl Cancel {
    /// Stops new work; running work winds down and teardown runs.
    pub fn cancel(&self) {
        self.sender.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        let mut receiver = self.receiver.clone();
        let _ = receiver.wait_for(|cancelled| *cancelled).await;
    }
}

/// When to keep the clusters up after the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    #[default]
    Never,
    Always,
    OnFailure,
}

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Overrides the scenario's provider.
    pub provider: Option<ProviderName>,
    /// Organizations worked on at once.
    pub jobs: usize,
    /// The run directory itself; default `<runs_root>/<run id>/`.
    pub run_dir: Option<PathBuf>,
    /// Where default run directories go.
    pub runs_root: PathBuf,
    /// Extra copies of report.json and junit.xml.
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    /// The verify phase's budget, per verify step.
    pub verify_timeout: Duration,
    /// Where the simulator's clusters run.
    pub isolation: Isolation,
    pub secrets: SecretSource,
    pub keep: Keep,
    pub cancel: Cancel,
    pub sim: SimOptions,
    /// Extra environment for the external tools (kind, helm, docker); tests point it at fakes.
    pub environment: crate::process::Environment,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            provider: None,
            jobs: 8,
            run_dir: None,
            runs_root: PathBuf::from("orgmesh-runs"),
            json: None,
            junit: None,
            verify_timeout: Duration::from_secs(300),
            isolation: Isolation::InProcess,
            secrets: SecretSource::Os,
            keep: Keep::Never,
            cancel: Cancel::default(),
            sim: SimOptions::default(),
            environment: crate::process::Environment::inherit(),
        }
    }
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub report: Report,
    pub run_dir: PathBuf,
}

/// A short random run id: 8 lowercase hex characters, so that kind cluster names
/// `orgmesh-<run>-<cluster>` stay within 50 characters.
pub fn new_run_id() -> String {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates the run directory (0700). An existing non-empty directory is refused: it may be
/// the user's.
fn prepare_run_dir(directory: &Path) -> Result<(), Error> {
    if directory.exists() {
        let empty = fs::read_dir(directory)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(Error::usage(
                format!(
                    "the run directory {} exists and is not empty",
                    directory.display()
                ),
                "orgmesh never writes into a directory it did not create; choose another --run-dir",
            ));
        }
    }
    create_private_dir(directory)?;
    fs::set_permissions(
        directory,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .map_err(|e| Error::write(directory, e))
}

/// Everything the steps need that does not change between steps, shared by reference.
struct Context<'a> {
    /// The scenario as written; the organizations present at a step are in [`State`].
    scenario: &'a Scenario,
    provider: &'a Provider,
    options: &'a RunOptions,
    emit: &'a (dyn Fn(Event) + Sync),
    run_dir: &'a Path,
}

/// What the steps change: secrets, values, chart versions, and what orgmesh knows the
/// backends' databases hold.
struct State {
    /// The organizations present now, their channels, faults and expectations.
    scenario: Scenario,
    topology: Topology,
    orchestrator_values: Value,
    /// The MSP id of every organization the run ever has, removed ones included.
    msp_ids: HashMap<String, String>,
    secrets: LinkSecrets,
    documents: Vec<BackendValues>,
    backend_chart: ChartVersion,
    orchestrator_chart: ChartVersion,
    /// Whether the releases carry their link values (after `link` or `deploy-linked`).
    linked: bool,
    /// The incoming secret each directed link's target stores, derived from the values orgmesh
    /// installed and the chart's account mechanism (facts §3): a sync chart stores what the
    /// values say, a create-only chart keeps the first secret it saw.
    stored: HashMap<(String, String), Secret>,
    /// The outgoing entries each organization's database holds, derived the same way: a
    /// create-only chart keeps the entry of a removed organization, so the table still lists it.
    stored_outgoing: std::collections::HashSet<(String, String)>,
    /// Rotations the next verify checks, one per directed link: the secret before the first
    /// rotation since the last verify, and the latest one.
    pending: Vec<Rotated>,
    /// Links of removed organizations the next verify checks: the secret the removed
    /// organization presented to a remaining one must now be rejected.
    revoked: Vec<Revoked>,
}

/// A link of a removed organization: `from` is gone, `to` remains.
struct Revoked {
    from: String,
    to: String,
    channel: String,
    secret: Secret,
}

impl State {
    /// The values an organization's release gets now.
    fn values_of(&self, document: &BackendValues) -> Value {
        if self.linked {
            document.linked.clone()
        } else {
            document.unlinked()
        }
    }

    /// Records what installing `organization` with the current values leaves in its database.
    fn record_install(&mut self, organization: &str) {
        let sync = self.backend_chart.account_sync() == AccountSync::Sync;
        let faults = &self.scenario.faults;
        let corrupted = faults
            .iter()
            .any(|f| matches!(&f.value, Fault::ChannelOnIncoming { at } if at == organization));
        let entries: Vec<((String, String), Secret)> = self
            .topology
            .links
            .iter()
            .filter(|l| l.to == organization && self.linked && !corrupted)
            .filter(|l| {
                !faults.iter().any(|f| {
                    matches!(&f.value, Fault::MissingIncoming { from, to } if *from == l.from && *to == l.to)
                })
            })
            .filter_map(|l| {
                let secret = self.secrets.link(&l.from, &l.to)?.clone();
                Some(((l.from.clone(), l.to.clone()), secret))
            })
            .collect();
        let outgoing: Vec<(String, String)> = self
            .topology
            .links_from(organization)
            .filter(|_| self.linked)
            .filter(|l| {
                !faults.iter().any(|f| {
                    matches!(&f.value, Fault::MissingOutgoing { from, to } if *from == l.from && *to == l.to)
                })
            })
            .map(|l| (l.from.clone(), l.to.clone()))
            .collect();
        if sync {
            // The sync commands delete every entry absent from the values.
            self.stored.retain(|(_, to), _| to != organization);
            self.stored.extend(entries);
            self.stored_outgoing
                .retain(|(from, _)| from != organization);
        } else {
            for (key, secret) in entries {
                self.stored.entry(key).or_insert(secret);
            }
        }
        self.stored_outgoing.extend(outgoing);
    }

    /// Forgets what an uninstalled organization's database held.
    fn forget(&mut self, organization: &str) {
        self.stored.retain(|(_, to), _| to != organization);
        self.stored_outgoing
            .retain(|(from, _)| from != organization);
    }

    /// Moves to the organizations present before step `index`: new topology, values and
    /// orchestrator values. Returns whether the orchestrator's values changed.
    fn advance(&mut self, context: &Context<'_>, index: usize) -> Result<bool, Error> {
        let (scenario, topology) = Topology::before_step(context.scenario, index)
            .map_err(|e| Error::infrastructure(e.to_string(), None))?;
        let (documents, _) = values::backend_values(&scenario, &topology, &self.secrets, &|o| {
            context.provider.profile(o)
        });
        let orchestrator_values = orchestrator_values(&scenario, context.provider);
        let changed = orchestrator_values != self.orchestrator_values;
        self.scenario = scenario;
        self.topology = topology;
        self.documents = documents;
        self.orchestrator_values = orchestrator_values;
        Ok(changed)
    }

    /// Each present organization's values as they would be installed now.
    fn values_by_organization(&self) -> HashMap<String, Value> {
        self.documents
            .iter()
            .map(|d| (d.organization.clone(), self.values_of(d)))
            .collect()
    }

    /// The present organizations, other than `except`, whose values differ from `before`.
    fn changed_since(&self, before: &HashMap<String, Value>, except: &str) -> Vec<String> {
        self.documents
            .iter()
            .filter(|d| d.organization != except)
            .filter(|d| before.get(&d.organization) != Some(&self.values_of(d)))
            .map(|d| d.organization.clone())
            .collect()
    }
}

/// The orchestrator's values: the channels with their members, and the provider's layer.
fn orchestrator_values(scenario: &Scenario, provider: &Provider) -> Value {
    let mut document = values::orchestrator_values(scenario);
    values::merge(&mut document, &provider.orchestrator_profile());
    document
}

/// Runs a validated scenario and returns its report. Teardown always runs.
pub async fn run(
    scenario: &Scenario,
    topology: &Topology,
    options: &RunOptions,
    emit: &(dyn Fn(Event) + Sync),
) -> Result<RunOutcome, Error> {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let provider_name = options
        .provider
        .or(scenario.provider)
        .unwrap_or(ProviderName::Sim);
    let run_id = new_run_id();
    let run_dir = options
        .run_dir
        .clone()
        .unwrap_or_else(|| options.runs_root.join(&run_id));
    let verify_steps = Plan::new(scenario)
        .steps
        .iter()
        .filter(|step| matches!(step, Step::Verify))
        .count();
    if let Some(fault) = scenario
        .faults
        .iter()
        .find(|f| matches!(f.value, Fault::ClusterDown { .. }))
        && verify_steps > 1
    {
        return Err(Error::usage(
            format!(
                "{}:{}:{}: `cluster-down` stops its cluster for good during the first verify step, and this scenario verifies {verify_steps} times",
                scenario.file.display(),
                fault.position.line,
                fault.position.column
            ),
            "keep one verify step in a scenario with `cluster-down`",
        ));
    }
    let Some(mut provider) = Provider::new(
        provider_name,
        options.isolation,
        options.sim.clone(),
        options.environment.clone(),
        &run_id,
        &run_dir,
    ) else {
        return Err(Error::usage(
            format!(
                "the {} provider is not available in this version of orgmesh",
                format!("{provider_name:?}").to_lowercase()
            ),
            "run on the embedded simulator (`--provider sim`), on kind, or on existing clusters",
        ));
    };
    if let Some(message) = provider.unsupported_fault(scenario) {
        return Err(Error::usage(
            message,
            "remove the fault, or run the scenario on a provider that reproduces it",
        ));
    }
    // Before anything is created: a host that cannot run the scenario is told what to fix.
    // Organizations added by a step are placed from the start: they need an address (and a
    // namespace) before their step, and secrets for the links they will have.
    let every = scenario.with_every_organization();
    let every_topology = Topology::of_every_organization(scenario)
        .map_err(|e| Error::infrastructure(e.to_string(), None))?;
    let found = provider.preflight(&every).await.map_err(|e| {
        Error::infrastructure(
            format!("preflight failed: {e}"),
            Some("`orgmesh doctor SCENARIO` runs the same checks alone".into()),
        )
    })?;
    prepare_run_dir(&run_dir)?;
    let values_dir = run_dir.join("values");
    create_private_dir(&values_dir)?;

    let wrong = scenario.faults.iter().filter_map(|f| match &f.value {
        Fault::WrongSecret { from, to } => Some((from.as_str(), to.as_str())),
        _ => None,
    });
    let secrets = LinkSecrets::generate(&every_topology, wrong, options.secrets)
        .map_err(|e| Error::infrastructure(e.to_string(), None))?;

    emit(Event::RunStarted {
        scenario: scenario.name.clone(),
        provider: provider.name().to_owned(),
        run_id: run_id.clone(),
        run_dir: run_dir.clone(),
        organizations: scenario.organizations.len(),
        links: topology.links.len(),
    });
    let _ = found;
    let mut phases = Vec::new();
    let mut checks = Vec::new();
    let mut state = State {
        scenario: scenario.clone(),
        topology: topology.clone(),
        orchestrator_values: Value::Null,
        msp_ids: every
            .organizations
            .iter()
            .map(|o| (o.name.clone(), o.msp_id.clone()))
            .collect(),
        secrets,
        documents: Vec::new(),
        backend_chart: scenario.charts.backend.version,
        orchestrator_chart: scenario.charts.orchestrator.version,
        linked: false,
        stored: HashMap::new(),
        stored_outgoing: std::collections::HashSet::new(),
        pending: Vec::new(),
        revoked: Vec::new(),
    };

    // Everything from here on has teardown registered: the provider is the only resource.
    let outcome = async {
        let phase_started = Instant::now();
        emit(Event::PhaseStarted {
            phase: "clusters".into(),
            total: scenario.clusters.len(),
        });
        let clusters = tokio::select! {
            clusters = provider.up(&every) => clusters.map_err(|e| {
                Error::infrastructure(format!("bringing clusters up failed: {e}"), None)
            })?,
            // Dropping the creation stops it; teardown deletes whatever exists by then.
            () = options.cancel.cancelled() => return Err(Error::Interrupted),
        };
        for (cluster, address) in clusters {
            emit(Event::ClusterReady { cluster, address });
        }
        provider.apply_network_faults(scenario).await.map_err(|e| {
            Error::infrastructure(format!("applying network faults failed: {e}"), None)
        })?;
        phases.push(finish_phase("clusters", phase_started, emit));

        let (documents, warnings) =
            values::backend_values(scenario, topology, &state.secrets, &|o| provider.profile(o));
        for message in warnings {
            emit(Event::Warning { message });
        }
        let orchestrator_values = orchestrator_values(scenario, &provider);
        write_values(&values_dir, &documents, &orchestrator_values)?;
        state.documents = documents;
        state.orchestrator_values = orchestrator_values;
        let context = Context {
            scenario,
            provider: &provider,
            options,
            emit,
            run_dir: &run_dir,
        };
        let plan = Plan::new(scenario);
        for (index, (step, name)) in plan.steps.iter().zip(plan.phase_names()).enumerate() {
            if options.cancel.is_cancelled() {
                return Err(Error::Interrupted);
            }
            let phase_started = Instant::now();
            run_step(&context, &mut state, step, index, &name, &mut checks).await?;
            phases.push(finish_phase(&name, phase_started, emit));
        }
        Ok::<(), Error>(())
    }
    .await;
    let secrets = state.secrets;

    let passed =
        outcome.is_ok() && checks.iter().all(|c: &CheckResult| c.passed) && !checks.is_empty();
    let keep = match options.keep {
        Keep::Always => true,
        Keep::OnFailure => !passed,
        Keep::Never => false,
    };
    if keep && !options.cancel.is_cancelled() {
        let addresses: Vec<String> = scenario
            .organizations
            .iter()
            .filter_map(|o| provider.address(&o.name).map(|a| format!("{} {a}", o.name)))
            .collect();
        emit(Event::Warning {
            message: format!(
                "keeping the simulated network up ({}); press Ctrl-C to tear it down",
                addresses.join(", ")
            ),
        });
        options.cancel.cancelled().await;
    }
    let teardown_started = Instant::now();
    emit(Event::TeardownStarted);
    let teardown_result = provider.down().await;
    let teardown = teardown_started.elapsed();
    emit(Event::TeardownFinished { duration: teardown });
    if let Err(error) = &teardown_result {
        emit(Event::Warning {
            message: format!("teardown did not complete: {error}"),
        });
    }
    phases.push(Phase {
        name: "teardown".into(),
        duration_ms: teardown.as_millis() as u64,
    });
    outcome?;
    teardown_result.map_err(|e| {
        Error::infrastructure(
            format!("teardown did not complete: {e}"),
            Some("`orgmesh down --run RUN_ID` retries it".into()),
        )
    })?;

    let mut report = Report {
        scenario: scenario.name.clone(),
        provider: provider.name().to_owned(),
        isolation: matches!(provider, Provider::Containers(_)).then(|| "containers".to_owned()),
        run_id,
        passed,
        started_at: report::rfc3339(started_at),
        duration_ms: started.elapsed().as_millis() as u64,
        charts: Charts {
            backend: scenario.charts.backend.version.to_string(),
            orchestrator: scenario.charts.orchestrator.version.to_string(),
        },
        phases,
        checks,
    };
    for check in &mut report.checks {
        if let Some(detail) = &check.detail {
            check.detail = Some(secrets::redact(detail, &secrets));
        }
    }
    write_reports(&report, &run_dir, options)?;
    Ok(RunOutcome { report, run_dir })
}

fn finish_phase(name: &str, started: Instant, emit: &(dyn Fn(Event) + Sync)) -> Phase {
    let duration = started.elapsed();
    emit(Event::PhaseFinished {
        phase: name.to_owned(),
        duration,
    });
    Phase {
        name: name.to_owned(),
        duration_ms: duration.as_millis() as u64,
    }
}

fn write_values(
    directory: &Path,
    documents: &[BackendValues],
    orchestrator: &Value,
) -> Result<(), Error> {
    write_private_file(
        &directory.join(values::ORCHESTRATOR_FILE),
        &yaml(orchestrator)?,
        false,
    )?;
    let unlinked = directory.join("unlinked");
    create_private_dir(&unlinked)?;
    for document in documents {
        write_private_file(
            &directory.join(&document.file_name),
            &yaml(&document.linked)?,
            false,
        )?;
        write_private_file(
            &unlinked.join(&document.file_name),
            &yaml(&document.unlinked())?,
            false,
        )?;
    }
    Ok(())
}

fn write_reports(report: &Report, run_dir: &Path, options: &RunOptions) -> Result<(), Error> {
    let report_error = |e: report::ReportError| {
        Error::infrastructure(format!("cannot write the report: {e}"), None)
    };
    report::write_json(report, &run_dir.join("report.json")).map_err(report_error)?;
    report::write_junit(report, &run_dir.join("junit.xml")).map_err(report_error)?;
    if let Some(path) = &options.json {
        report::write_json(report, path).map_err(report_error)?;
    }
    if let Some(path) = &options.junit {
        report::write_junit(report, path).map_err(report_error)?;
    }
    Ok(())
}

/// Runs one step of the plan; `name` is its phase.
async fn run_step(
    context: &Context<'_>,
    state: &mut State,
    step: &Step,
    index: usize,
    name: &str,
    checks: &mut Vec<CheckResult>,
) -> Result<(), Error> {
    let all: Vec<String> = state
        .documents
        .iter()
        .map(|d| d.organization.clone())
        .collect();
    let started = |total: usize| {
        (context.emit)(Event::PhaseStarted {
            phase: name.to_owned(),
            total,
        });
    };
    match step {
        Step::Deploy { linked } => {
            started(all.len());
            state.linked = *linked;
            install_orchestrator(context, state, "installing").await?;
            deploy(context, state, &all, Action::Install).await?;
            for organization in &all {
                state.record_install(organization);
            }
        }
        Step::Link => {
            started(all.len());
            state.linked = true;
            deploy(context, state, &all, Action::Upgrade).await?;
            for organization in &all {
                state.record_install(organization);
            }
        }
        Step::Verify => {
            started(all.len());
            let mut found = verify_all(context, state).await?;
            found.extend(verify_rotations(context, state).await?);
            found.extend(verify_revoked(context, state).await?);
            for check in &mut found {
                check.step = name.to_owned();
            }
            checks.extend(found);
        }
        Step::RotateSecrets { links } => {
            let links: Vec<(String, String)> = match links {
                Some(links) => links.clone(),
                None => state
                    .topology
                    .links
                    .iter()
                    .map(|l| (l.from.clone(), l.to.clone()))
                    .collect(),
            };
            let before: Vec<Value> = state.documents.iter().map(|d| state.values_of(d)).collect();
            let rotated = state
                .secrets
                .rotate(&links, context.options.secrets)
                .map_err(|e| Error::infrastructure(e.to_string(), None))?;
            for rotation in rotated {
                match state
                    .pending
                    .iter_mut()
                    .find(|p| p.from == rotation.from && p.to == rotation.to)
                {
                    Some(pending) => pending.new = rotation.new,
                    None => state.pending.push(rotation),
                }
            }
            state.advance(context, index)?;
            // Only the organizations whose values changed are upgraded: one upgrade each.
            let affected: Vec<String> = state
                .documents
                .iter()
                .zip(&before)
                .filter(|(document, before)| state.values_of(document) != **before)
                .map(|(document, _)| document.organization.clone())
                .collect();
            started(affected.len());
            write_step_values(context, state, name, &affected)?;
            deploy(context, state, &affected, Action::Upgrade).await?;
            for organization in &affected {
                state.record_install(organization);
            }
        }
        Step::UpgradeChart {
            backend,
            orchestrator,
        } => {
            let backends = if backend.is_some() { all.len() } else { 0 };
            started(backends);
            if let Some(version) = orchestrator {
                state.orchestrator_chart = *version;
                install_orchestrator(context, state, "upgrading").await?;
            }
            if let Some(version) = backend {
                state.backend_chart = *version;
                write_step_values(context, state, name, &all)?;
                deploy(context, state, &all, Action::Upgrade).await?;
                for organization in &all {
                    state.record_install(organization);
                }
            }
        }
        Step::AddOrganization { organization } => {
            let added = organization.name.as_str();
            let before = state.values_by_organization();
            let orchestrator_changed = state.advance(context, index + 1)?;
            // Only the peers whose values change are upgraded: once each.
            let peers = state.changed_since(&before, added);
            started(1 + peers.len());
            let mut written = peers.clone();
            written.push(added.to_owned());
            write_step_values(context, state, name, &written)?;
            if orchestrator_changed {
                install_orchestrator(context, state, "upgrading").await?;
            }
            deploy(context, state, &[added.to_owned()], Action::Install).await?;
            deploy(context, state, &peers, Action::Upgrade).await?;
            for organization in &written {
                state.record_install(organization);
            }
        }
        Step::RemoveOrganization { name: removed } => {
            // What the removed organization could present to each peer before it left: the
            // secret the peer stores (a create-only chart keeps the first one), else its values'.
            let revoked: Vec<Revoked> = state
                .topology
                .links_from(removed)
                .filter(|l| !l.is_self())
                .filter_map(|link| {
                    let key = (link.from.clone(), link.to.clone());
                    let secret = state
                        .stored
                        .get(&key)
                        .or_else(|| state.secrets.link(&link.from, &link.to))?;
                    Some(Revoked {
                        from: link.from.clone(),
                        to: link.to.clone(),
                        channel: link.channel.clone(),
                        secret: secret.clone(),
                    })
                })
                .collect();
            let before = state.values_by_organization();
            let orchestrator_changed = state.advance(context, index + 1)?;
            let peers = state.changed_since(&before, removed);
            started(1 + peers.len());
            write_step_values(context, state, name, &peers)?;
            uninstall(context, state, removed).await?;
            state.forget(removed);
            if orchestrator_changed {
                install_orchestrator(context, state, "upgrading").await?;
            }
            deploy(context, state, &peers, Action::Upgrade).await?;
            for organization in &peers {
                state.record_install(organization);
            }
            state
                .pending
                .retain(|p| p.from != *removed && p.to != *removed);
            state.revoked.retain(|r| r.to != *removed);
            state.revoked.extend(revoked);
        }
    }
    Ok(())
}

/// `helm uninstall` of one organization's backend, with its events.
async fn uninstall(context: &Context<'_>, state: &State, organization: &str) -> Result<(), Error> {
    let started = Instant::now();
    let action = Action::Uninstall;
    (context.emit)(Event::OrganizationStarted {
        organization: organization.to_owned(),
        action,
    });
    let result = tokio::select! {
        result = context.provider.uninstall_backend(organization) => result.map_err(|e| e.to_string()),
        () = context.options.cancel.cancelled() => return Err(Error::Interrupted),
    };
    let outcome = match &result {
        Ok(()) => Outcome::Done {
            duration: started.elapsed(),
        },
        Err(message) => Outcome::Failed {
            duration: started.elapsed(),
            message: secrets::redact(message, &state.secrets),
        },
    };
    (context.emit)(Event::OrganizationFinished {
        organization: organization.to_owned(),
        action,
        outcome,
    });
    result.map_err(|message| {
        Error::infrastructure(
            format!(
                "uninstalling the backend of {organization} failed: {}",
                secrets::redact(&message, &state.secrets)
            ),
            None,
        )
    })
}

/// The revoked checks of the organizations removed since the last verify: each remaining
/// former peer must reject the secret the removed organization presented to it.
async fn verify_revoked(
    context: &Context<'_>,
    state: &mut State,
) -> Result<Vec<CheckResult>, Error> {
    let targets: Vec<RevokedTarget> = std::mem::take(&mut state.revoked)
        .into_iter()
        .filter_map(|revoked| {
            let stored = state
                .stored
                .get(&(revoked.from.clone(), revoked.to.clone()));
            Some(RevokedTarget {
                from_msp: state
                    .msp_ids
                    .get(&revoked.from)
                    .cloned()
                    .unwrap_or_else(|| revoked.from.clone()),
                to_address: context.provider.address(&revoked.to)?.to_owned(),
                channel: revoked.channel,
                expected: expected_for(stored, &revoked.secret),
                from: revoked.from,
                to: revoked.to,
                secret: revoked.secret,
            })
        })
        .collect();
    let options = verify_options(context);
    harness_checks(context, &options, &targets, |target, options, cancel| {
        check_revoked(target, options, cancel)
    })
    .await
}

/// The values a step upgrades organizations with, in `values/<phase>/`, for the record.
fn write_step_values(
    context: &Context<'_>,
    state: &State,
    phase: &str,
    organizations: &[String],
) -> Result<(), Error> {
    let directory = context.run_dir.join("values").join(phase);
    create_private_dir(&directory)?;
    for document in state
        .documents
        .iter()
        .filter(|d| organizations.contains(&d.organization))
    {
        write_private_file(
            &directory.join(&document.file_name),
            &yaml(&state.values_of(document))?,
            false,
        )?;
    }
    Ok(())
}

/// `helm upgrade --install` of the orchestrator with the state's chart and values.
async fn install_orchestrator(
    context: &Context<'_>,
    state: &State,
    verb: &str,
) -> Result<(), Error> {
    let install = context
        .provider
        .install_orchestrator(state.orchestrator_chart, &state.orchestrator_values);
    tokio::select! {
        result = install => result.map_err(|e| {
            Error::infrastructure(format!("{verb} the orchestrator failed: {e}"), None)
        }),
        // Dropping the install kills helm; teardown removes what it left.
        () = context.options.cancel.cancelled() => Err(Error::Interrupted),
    }
}

/// The rotation checks of the secrets rotated since the last verify; afterwards none is pending.
async fn verify_rotations(
    context: &Context<'_>,
    state: &mut State,
) -> Result<Vec<CheckResult>, Error> {
    let msp = |name: &str| {
        state
            .msp_ids
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    };
    let targets: Vec<RotationTarget> = std::mem::take(&mut state.pending)
        .into_iter()
        .filter_map(|rotation| {
            let link = state
                .topology
                .links
                .iter()
                .find(|l| l.from == rotation.from && l.to == rotation.to)?;
            let stored = state
                .stored
                .get(&(rotation.from.clone(), rotation.to.clone()));
            let outcome = |secret: &Secret| expected_for(stored, secret);
            Some(RotationTarget {
                from_msp: msp(&rotation.from),
                to_address: context.provider.address(&rotation.to)?.to_owned(),
                channel: link.channel.clone(),
                expected: (outcome(&rotation.new), outcome(&rotation.old)),
                from: rotation.from,
                to: rotation.to,
                old: rotation.old,
                new: rotation.new,
            })
        })
        .collect();
    let options = verify_options(context);
    harness_checks(context, &options, &targets, |target, options, cancel| {
        check_rotation(target, "", options, cancel)
    })
    .await
}

/// Installs or upgrades the backends of `organizations`, at most `jobs` at a time, with the
/// values of the current state (linked or not).
async fn deploy(
    context: &Context<'_>,
    state: &State,
    organizations: &[String],
    action: Action,
) -> Result<(), Error> {
    let chart = state.backend_chart;
    let selected: Vec<&BackendValues> = state
        .documents
        .iter()
        .filter(|d| organizations.contains(&d.organization))
        .collect();
    let secrets = &state.secrets;
    let results = futures::stream::iter(selected)
        .take_while(|_| std::future::ready(!context.options.cancel.is_cancelled()))
        .map(|document| async move {
            let started = Instant::now();
            (context.emit)(Event::OrganizationStarted { organization: document.organization.clone(), action });
            let values = state.values_of(document);
            let result = tokio::select! {
                result = context.provider.install_backend(&document.organization, chart, &values) => result.map_err(|e| e.to_string()),
                () = context.options.cancel.cancelled() => Err("interrupted".to_owned()),
            };
            let outcome = match &result {
                Ok(()) => Outcome::Done { duration: started.elapsed() },
                Err(message) => Outcome::Failed { duration: started.elapsed(), message: secrets::redact(message, secrets) },
            };
            (context.emit)(Event::OrganizationFinished { organization: document.organization.clone(), action, outcome });
            (document.organization.clone(), result)
        })
        .buffer_unordered(context.options.jobs.max(1))
        .collect::<Vec<_>>()
        .await;
    if context.options.cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    for (organization, result) in &results {
        if result.is_err() {
            let directory = context.run_dir.join("diagnostics").join(organization);
            write_provider_diagnostics(context, secrets, organization, &directory).await?;
        }
    }
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(organization, result)| {
            result
                .err()
                .map(|e| format!("{organization}: {}", secrets::redact(&e, secrets)))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::infrastructure(
            format!("{} of backend {} failed: {}", action, if failures.len() == 1 { "release" } else { "releases" }, failures.join("; ")),
            Some("the organization's values are in the run directory's values/; chart and orchestrator errors are quoted above".into()),
        ))
    }
}

/// What presenting `secret` should get: accepted exactly when the backend's database holds it.
fn expected_for(stored: Option<&Secret>, secret: &Secret) -> AuthOutcome {
    if stored == Some(secret) {
        AuthOutcome::Accepted
    } else {
        AuthOutcome::Rejected
    }
}

/// Runs harness-side checks (orgmesh itself presenting secrets), `jobs` at a time, in order.
async fn harness_checks<'a, T, F, Fut>(
    context: &'a Context<'_>,
    options: &'a VerifyOptions,
    targets: &'a [T],
    check: F,
) -> Result<Vec<CheckResult>, Error>
where
    F: Fn(&'a T, &'a VerifyOptions, &'a Cancel) -> Fut,
    Fut: std::future::Future<Output = CheckResult>,
{
    let cancel = &context.options.cancel;
    let results: Vec<CheckResult> = futures::stream::iter(targets.iter())
        .map(|target| check(target, options, cancel))
        .buffered(context.options.jobs.max(1))
        .collect()
        .await;
    if cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    Ok(results)
}

/// How a verify step polls: its budget starts now; a mismatch seen three times in a row is
/// final; pauses start at 100 ms and double up to 2 s.
fn verify_options(context: &Context<'_>) -> VerifyOptions {
    VerifyOptions {
        deadline: Instant::now() + context.options.verify_timeout,
        stable_attempts: 3,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
    }
}

/// The lowest anonymous throttle among the organizations (`config.DEFAULT_THROTTLE_RATES`).
fn lowest_throttle(documents: &[BackendValues]) -> u32 {
    documents
        .iter()
        .filter_map(|d| d.linked.pointer("/config/DEFAULT_THROTTLE_RATES"))
        .filter_map(|v| {
            v.as_str()
                .and_then(|s| s.trim().parse().ok())
                .or_else(|| v.as_u64().map(|n| n as u32))
        })
        .min()
        .unwrap_or(40)
}

/// Verifies every organization's outgoing links; writes diagnostics for organizations with a
/// failed check.
async fn verify_all(context: &Context<'_>, state: &State) -> Result<Vec<CheckResult>, Error> {
    let scenario = &state.scenario;
    let msp: HashMap<&str, &str> = scenario
        .organizations
        .iter()
        .map(|o| (o.name.as_str(), o.msp_id.as_str()))
        .collect();
    let missing_outgoing: std::collections::HashSet<(&str, &str)> = scenario
        .faults
        .iter()
        .filter_map(|f| match &f.value {
            Fault::MissingOutgoing { from, to } => Some((from.as_str(), to.as_str())),
            _ => None,
        })
        .collect();
    let sources: Vec<Source> = scenario
        .organizations
        .iter()
        .map(|organization| Source {
            name: organization.name.clone(),
            cluster: organization.cluster.clone(),
            targets: state
                .topology
                .links_from(&organization.name)
                .map(|link| Target {
                    name: link.to.clone(),
                    msp_id: msp
                        .get(link.to.as_str())
                        .map_or(link.to.clone(), |m| (*m).to_owned()),
                    expected: link.expected,
                    listed: !missing_outgoing.contains(&(link.from.as_str(), link.to.as_str())),
                })
                .chain(stale_targets(state, &organization.name))
                .collect(),
        })
        .collect();
    let pacer = Pacer::new(
        scenario.clusters.iter().map(|c| c.name.as_str()),
        lowest_throttle(&state.documents),
    );
    let options = verify_options(context);
    let down: std::collections::HashSet<&str> = scenario
        .faults
        .iter()
        .filter_map(|f| match &f.value {
            Fault::ClusterDown { cluster } => Some(cluster.as_str()),
            _ => None,
        })
        .collect();
    let cluster_of: HashMap<&str, &str> = scenario
        .organizations
        .iter()
        .map(|o| (o.name.as_str(), o.cluster.as_str()))
        .collect();
    let is_down = |organization: &str| {
        cluster_of
            .get(organization)
            .is_some_and(|cluster| down.contains(cluster))
    };
    let results = if down.is_empty() {
        verify_sources(context, &sources, &pacer, &options, true).await
    } else {
        // `cluster-down`: the stopped clusters' own links are checked while they still run,
        // except those into a stopped cluster; then the clusters stop, and everything else is
        // checked against the network as it is now.
        let (inside, outside): (Vec<Source>, Vec<Source>) = sources
            .into_iter()
            .partition(|s| down.contains(s.cluster.as_str()));
        // Their progress spans both passes: announced here, finished once merged.
        let inside_started = Instant::now();
        for source in &inside {
            (context.emit)(Event::OrganizationStarted {
                organization: source.name.clone(),
                action: Action::Verify,
            });
        }
        let mut before = verify_sources(context, &inside, &pacer, &options, false).await;
        if context.options.cancel.is_cancelled() {
            return Err(Error::Interrupted);
        }
        for cluster in scenario
            .clusters
            .iter()
            .filter(|c| down.contains(c.name.as_str()))
        {
            context
                .provider
                .stop_cluster(&cluster.name)
                .await
                .map_err(|e| Error::infrastructure(format!("cluster-down: {e}"), None))?;
            (context.emit)(Event::Warning {
                message: format!("cluster {} stopped (cluster-down fault)", cluster.name),
            });
        }
        let into_down: Vec<Source> = inside
            .iter()
            .map(|source| Source {
                targets: source
                    .targets
                    .iter()
                    .filter(|t| is_down(&t.name))
                    .cloned()
                    .collect(),
                ..source.clone()
            })
            .filter(|source| !source.targets.is_empty())
            .collect();
        let (mut after, stopped) = futures::join!(
            verify_sources(context, &outside, &pacer, &options, true),
            verify_sources(context, &into_down, &pacer, &options, false),
        );
        for (name, checks, _) in &mut before {
            checks.retain(|c| !is_down(&c.to));
            if let Some((_, later, _)) = stopped.iter().find(|(n, _, _)| n == name) {
                checks.extend(
                    later
                        .iter()
                        .filter(|c| c.check != report::CheckKind::Complete)
                        .cloned(),
                );
            }
            (context.emit)(Event::OrganizationFinished {
                organization: name.clone(),
                action: Action::Verify,
                outcome: verify_outcome(checks, inside_started.elapsed()),
            });
        }
        after.extend(before);
        after
    };
    if context.options.cancel.is_cancelled() {
        return Err(Error::Interrupted);
    }
    // Keep the scenario's order, whatever order the organizations finished in.
    let order: HashMap<&str, usize> = scenario
        .organizations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.name.as_str(), i))
        .collect();
    let mut results = results;
    results.sort_by_key(|(name, _, _)| order.get(name.as_str()).copied().unwrap_or(usize::MAX));
    let mut all = Vec::new();
    for (organization, mut checks, outputs) in results {
        if checks.iter().any(|c| !c.passed) {
            let relative = format!("diagnostics/{organization}/");
            let directory = context.run_dir.join(&relative);
            write_diagnostics(&directory, &outputs, &state.secrets)?;
            write_provider_diagnostics(context, &state.secrets, &organization, &directory).await?;
            for check in checks.iter_mut().filter(|c| !c.passed) {
                check.diagnostics = Some(relative.clone());
            }
        }
        all.extend(checks);
    }
    Ok(all)
}

/// How one organization's verification ended, for the progress display.
fn verify_outcome(checks: &[CheckResult], duration: Duration) -> Outcome {
    let failed = checks.iter().filter(|c| !c.passed).count();
    if failed == 0 {
        Outcome::Done { duration }
    } else {
        Outcome::Failed {
            duration,
            message: format!(
                "{failed} of {} checks did not meet their expectation",
                checks.len()
            ),
        }
    }
}

/// Verifies each source (`jobs` at a time); `announce`: emit per-organization progress.
async fn verify_sources(
    context: &Context<'_>,
    sources: &[Source],
    pacer: &Pacer,
    options: &VerifyOptions,
    announce: bool,
) -> Vec<(String, Vec<CheckResult>, LastOutputs)> {
    let cancel = &context.options.cancel;
    let emit = |event: Event| {
        if announce {
            (context.emit)(event);
        }
    };
    let emit = &emit;
    futures::stream::iter(sources.iter())
        .take_while(|_| std::future::ready(!cancel.is_cancelled()))
        .map(|source| async move {
            let started = Instant::now();
            emit(Event::OrganizationStarted {
                organization: source.name.clone(),
                action: Action::Verify,
            });
            let (checks, outputs) =
                verify::verify_source(context.provider, source, pacer, options, cancel).await;
            emit(Event::OrganizationFinished {
                organization: source.name.clone(),
                action: Action::Verify,
                outcome: verify_outcome(&checks, started.elapsed()),
            });
            (source.name.clone(), checks, outputs)
        })
        .buffer_unordered(context.options.jobs.max(1))
        .collect()
        .await
}

/// The removed organizations an organization's database still lists as outgoing (a
/// create-only chart never deletes entries, facts §3): its table shows them with the error of
/// a backend that is gone, and the credential probe cannot reach them either.
fn stale_targets(state: &State, organization: &str) -> Vec<Target> {
    let mut stale: Vec<&String> = state
        .stored_outgoing
        .iter()
        .filter(|(from, to)| from == organization && !state.topology.has_link(from, to))
        .map(|(_, to)| to)
        .collect();
    stale.sort();
    stale
        .into_iter()
        .map(|to| Target {
            name: to.clone(),
            msp_id: state.msp_ids.get(to).cloned().unwrap_or_else(|| to.clone()),
            expected: crate::topology::Expected {
                reach: crate::scenario::Reach::Error,
                auth: AuthOutcome::Error,
            },
            listed: true,
        })
        .collect()
}

/// The provider's evidence for a failing organization (pods, events, logs, helm status),
/// redacted, collected before teardown.
async fn write_provider_diagnostics(
    context: &Context<'_>,
    secrets: &LinkSecrets,
    organization: &str,
    directory: &Path,
) -> Result<(), Error> {
    let files = context.provider.diagnostics(organization).await;
    if files.is_empty() {
        return Ok(());
    }
    create_private_dir(directory)?;
    for (name, content) in files {
        write_private_file(
            &directory.join(name),
            &secrets::redact(&content, secrets),
            true,
        )?;
    }
    Ok(())
}

/// What a failing organization showed on its last attempt, redacted.
fn write_diagnostics(
    directory: &Path,
    outputs: &LastOutputs,
    secrets: &LinkSecrets,
) -> Result<(), Error> {
    create_private_dir(directory)?;
    let table = directory.join("get_outgoing_organization.txt");
    let probe = directory.join("credential-probe.txt");
    write_private_file(&table, &secrets::redact(&outputs.table, secrets), true)?;
    write_private_file(&probe, &secrets::redact(&outputs.probe, secrets), true)?;
    Ok(())
}
