//! The command line: clap structures (raw) turned into validated options, and one function
//! per command. Every command returns an exit code from [`crate::error::exit_codes`].

use std::fs;
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::error::{Error, exit_codes};
use crate::plan::{self, Plan};
use crate::provider::Isolation;
use crate::scenario::{self, ScenarioErrors};
use crate::secrets::{LinkSecrets, SecretSource};
use crate::topology::Topology;
use crate::values;

/// orgmesh: prove that a network of Substra organizations is linked.
#[derive(Debug, Parser)]
#[command(name = "orgmesh", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check scenario files; exit 2 with file:line:column diagnostics.
    Validate {
        /// Scenario files.
        #[arg(required = true, value_name = "SCENARIO")]
        scenarios: Vec<PathBuf>,
    },
    /// Write the per-organization values files the linking guide asks for.
    Render {
        #[arg(value_name = "SCENARIO")]
        scenario: PathBuf,
        /// Directory to write into (created with mode 0700 if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Derive secrets from this seed instead of the OS generator (reproducible; tests only).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Replace values files that already exist in DIR.
        #[arg(long)]
        force: bool,
    },
    /// Print the steps, releases and the pairs to check (no secrets).
    Plan {
        #[arg(value_name = "SCENARIO")]
        scenario: PathBuf,
        /// The provider the run would use (default: the scenario's, else sim).
        #[arg(long, value_name = "P")]
        provider: Option<String>,
    },
    /// Print the JSON Schema of the scenario format (for editor completion).
    Schema,
    /// Bring the network up, link it, check every directed link, report, tear down.
    Run(RunArgs),
    /// Preflight: tools, versions, kernel limits and memory for a scenario (default: the guide's two clusters).
    Doctor {
        #[arg(value_name = "SCENARIO")]
        scenario: Option<PathBuf>,
        /// The provider to check for (default: the scenario's, else kind).
        #[arg(long, value_name = "P")]
        provider: Option<String>,
        /// With the sim provider: check for `--isolation containers`.
        #[arg(long, value_name = "MODE", value_enum, default_value_t = Isolation::InProcess)]
        isolation: Isolation,
    },
    /// Delete what runs created: only kind clusters named `orgmesh-*`, and Docker containers
    /// and networks labelled `dev.orgmesh.run`.
    Down {
        /// The run whose clusters to delete (its id, as in `orgmesh-runs/<id>`).
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        run: Option<String>,
        /// Every cluster orgmesh created, from any run.
        #[arg(long)]
        all: bool,
    },
    /// Check an existing network's backend values files for linking defects.
    Lint {
        #[arg(required = true, value_name = "VALUES_FILE")]
        files: Vec<PathBuf>,
        /// Print `{findings: [...]}` as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build orgmesh's simulator image locally (FROM scratch + this binary + its libraries).
    Image {
        #[command(subcommand)]
        action: ImageAction,
    },
    /// Print a scenario that reproduces a network and its defects from its values files.
    Import {
        #[arg(required = true, value_name = "VALUES_FILE")]
        files: Vec<PathBuf>,
    },
    /// What runs inside a node container of `--isolation containers`.
    #[command(hide = true)]
    SimNode {
        #[command(subcommand)]
        action: SimNodeAction,
    },
}

/// `orgmesh image` actions.
#[derive(Debug, Subcommand)]
pub enum ImageAction {
    /// Build the image and print its reference.
    Build,
}

/// `orgmesh sim-node` actions (inside a node container).
#[derive(Debug, Subcommand)]
pub enum SimNodeAction {
    /// Serve the cluster's simulated backends and the control API until stopped.
    Serve {
        /// HTTP_CLIENT_TIMEOUT_SECONDS of the backends.
        #[arg(long, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
        http_timeout: std::time::Duration,
    },
    /// Run a command in one organization's server, like `kubectl exec`.
    Exec {
        #[arg(long)]
        organization: String,
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
}

/// `orgmesh run` as typed.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Where to run: sim (default), kind, existing, k3s. Wins over the scenario's `provider`.
    #[arg(long, value_name = "P")]
    pub provider: Option<String>,
    /// Keep the network up after the run until Ctrl-C.
    #[arg(long, conflicts_with = "keep_on_failure")]
    pub keep: bool,
    /// Keep the network up after a failed run until Ctrl-C.
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Organizations installed or verified at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// The run directory itself (default ./orgmesh-runs/<run id>/).
    #[arg(long, value_name = "D")]
    pub run_dir: Option<PathBuf>,
    /// Also write the JUnit report here.
    #[arg(long, value_name = "F")]
    pub junit: Option<PathBuf>,
    /// Also write report.json here.
    #[arg(long, value_name = "F")]
    pub json: Option<PathBuf>,
    /// Budget of each verify step, e.g. 30s or 5m.
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Derive secrets from this seed instead of the OS generator (reproducible; tests only).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Print only warnings and the summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// The simulator's clusters: in this process (default), or one Docker container each on
    /// a run-private network, so that partitions and stopped clusters are real network faults.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = Isolation::InProcess)]
    pub isolation: Isolation,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 30s or 5m: {e}"))
}

fn parse_provider(text: &str) -> Result<scenario::ProviderName, Error> {
    match text {
        "sim" => Ok(scenario::ProviderName::Sim),
        "kind" => Ok(scenario::ProviderName::Kind),
        "existing" => Ok(scenario::ProviderName::Existing),
        "k3s" => Ok(scenario::ProviderName::K3s),
        other => Err(Error::usage(
            format!("`{other}` is not a provider"),
            "use one of sim, kind, existing, k3s",
        )),
    }
}

/// Whether stderr gets colour: a terminal, and `NO_COLOR` unset or empty.
pub fn use_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints an error and its hint to stderr.
pub fn report_error(error: &Error) {
    let mut stderr = std::io::stderr().lock();
    match error {
        Error::Scenario(errors) => print_scenario_errors(&mut stderr, errors),
        other => {
            let _ = writeln!(stderr, "error: {other}");
            if let Some(hint) = other.hint() {
                let _ = writeln!(stderr, "  hint: {hint}");
            }
        }
    }
}

fn print_scenario_errors(out: &mut dyn Write, errors: &ScenarioErrors) {
    if use_color() {
        for diagnostic in &errors.diagnostics {
            let _ = writeln!(out, "{:?}", miette::Report::new(diagnostic.clone()));
        }
    } else {
        let _ = write!(out, "{}", errors.to_plain_text());
    }
}

/// Runs a parsed command line and returns the exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Validate { scenarios } => return validate(&scenarios),
        Command::Render {
            scenario,
            out,
            seed,
            force,
        } => render(&scenario, &out, seed, force),
        Command::Plan { scenario, provider } => print_plan(&scenario, provider.as_deref()),
        Command::Schema => {
            println!("{}", scenario::schema::schema_json());
            Ok(())
        }
        Command::Run(arguments) => return run_command(arguments),
        Command::Doctor {
            scenario,
            provider,
            isolation,
        } => return block_on(doctor(scenario, provider, isolation)),
        // `--all` is the absence of `--run` (clap requires one of them).
        Command::Down { run, all: _ } => return block_on(down(run)),
        Command::Lint { files, json } => return crate::lint::lint_command(&files, json),
        Command::Import { files } => return crate::import::import_command(&files),
        Command::Image {
            action: ImageAction::Build,
        } => return block_on(build_image()),
        Command::SimNode { action } => return block_on(sim_node(action)),
    };
    match result {
        Ok(()) => exit_codes::OK,
        Err(error) => {
            report_error(&error);
            error.exit_code()
        }
    }
}

/// Loads and validates a scenario and derives its topology.
pub fn load(path: &Path) -> Result<(scenario::Scenario, Topology), Error> {
    let scenario = scenario::load(path)?;
    let topology = Topology::build(&scenario)?;
    Ok((scenario, topology))
}

fn validate(paths: &[PathBuf]) -> i32 {
    let mut code = exit_codes::OK;
    for path in paths {
        match load(path) {
            Ok((scenario, topology)) => println!(
                "ok: {}: {} organizations, {} clusters, {} directed links",
                path.display(),
                scenario.organizations.len(),
                scenario.clusters.len(),
                topology.links.len()
            ),
            Err(error) => {
                report_error(&error);
                code = error.exit_code();
            }
        }
    }
    code
}

fn print_plan(path: &Path, provider: Option<&str>) -> Result<(), Error> {
    let (scenario, topology) = load(path)?;
    let provider = provider
        .map(str::to_owned)
        .or_else(|| scenario.provider.map(|p| format!("{p:?}").to_lowercase()))
        .unwrap_or_else(|| "sim".to_owned());
    let plan = Plan::new(&scenario);
    print!("{}", plan::describe(&scenario, &topology, &plan, &provider));
    Ok(())
}

/// The secret source for `--seed`, with the warning a seed deserves.
pub fn secret_source(seed: Option<u64>) -> SecretSource {
    match seed {
        Some(seed) => {
            eprintln!(
                "warning: --seed {seed}: secrets are derived from the seed and reproducible; never use them in a real network"
            );
            SecretSource::Seeded(seed)
        }
        None => SecretSource::Os,
    }
}

/// Creates `directory` (and parents) with mode 0700 if it does not exist.
pub fn create_private_dir(directory: &Path) -> Result<(), Error> {
    if directory.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .map_err(|e| Error::write(directory, e))
}

/// Writes `content` to `path` with mode 0600. Without `replace`, an existing file is an error.
pub fn write_private_file(path: &Path, content: &str, replace: bool) -> Result<(), Error> {
    let mut options = fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::usage(
                format!("{} already exists", path.display()),
                "orgmesh never overwrites files it did not create in this run; choose another --out or pass --force",
            )
        } else {
            Error::write(path, e)
        }
    })?;
    // An existing file keeps its old mode when truncated: tighten it.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::write(path, e))?;
    file.write_all(content.as_bytes())
        .map_err(|e| Error::write(path, e))
}

fn render(path: &Path, out: &Path, seed: Option<u64>, force: bool) -> Result<(), Error> {
    let (scenario, topology) = load(path)?;
    let source = secret_source(seed);
    let wrong = scenario.faults.iter().filter_map(|f| match &f.value {
        scenario::Fault::WrongSecret { from, to } => Some((from.as_str(), to.as_str())),
        _ => None,
    });
    let secrets = LinkSecrets::generate(&topology, wrong, source)
        .map_err(|e| Error::infrastructure(e.to_string(), None))?;
    let (documents, warnings) =
        values::backend_values(&scenario, &topology, &secrets, &|_| serde_json::Value::Null);
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    if !scenario.faults.is_empty() {
        eprintln!(
            "warning: the scenario declares {} fault(s); the rendered files contain them",
            scenario.faults.len()
        );
    }
    let orchestrator = out.join(values::ORCHESTRATOR_FILE);
    // Refuse before writing anything, so that a refusal leaves DIR as it was.
    if !force {
        let targets = std::iter::once(orchestrator.clone())
            .chain(documents.iter().map(|d| out.join(&d.file_name)));
        for target in targets {
            if target.exists() {
                return Err(Error::usage(
                    format!("{} already exists", target.display()),
                    "orgmesh never overwrites files it did not create in this run; choose another --out or pass --force",
                ));
            }
        }
    }
    create_private_dir(out)?;
    write_private_file(
        &orchestrator,
        &yaml(&values::orchestrator_values(&scenario))?,
        force,
    )?;
    for document in &documents {
        write_private_file(
            &out.join(&document.file_name),
            &yaml(&document.linked)?,
            force,
        )?;
    }
    println!(
        "wrote {} and {} backend values files to {} ({} directed links)",
        values::ORCHESTRATOR_FILE,
        documents.len(),
        out.display(),
        topology.links.len()
    );
    Ok(())
}

/// A values document as YAML, or the error that stopped it.
pub fn yaml(document: &serde_json::Value) -> Result<String, Error> {
    values::to_yaml(document)
        .map_err(|e| Error::infrastructure(format!("cannot write values as YAML: {e}"), None))
}

fn run_command(arguments: RunArgs) -> i32 {
    // testcontainers must be pointed at the engine before the runtime's threads exist.
    let docker = if needs_docker(&arguments) {
        match crate::docker::prepare_testcontainers() {
            Ok(prepared) => Some(prepared),
            Err(error) => {
                report_error(&Error::infrastructure(error.to_string(), None));
                return exit_codes::INFRASTRUCTURE;
            }
        }
    } else {
        None
    };
    block_on(run_async(arguments, docker))
}

/// Whether the run starts containers: container isolation, or the k3s provider (named on the
/// command line or in the scenario; an unreadable scenario is reported by the run itself)
/// without attached servers.
fn needs_docker(arguments: &RunArgs) -> bool {
    if arguments.isolation == Isolation::Containers {
        return true;
    }
    let k3s = match arguments.provider.as_deref() {
        Some(provider) => provider == "k3s",
        None => load(&arguments.scenario)
            .is_ok_and(|(scenario, _)| scenario.provider == Some(scenario::ProviderName::K3s)),
    };
    // Attached k3s servers are someone else's: no container is started.
    k3s && std::env::var_os(crate::provider::k3s::ATTACH_VARIABLE).is_none()
}

/// Runs an async command on a multi-threaded runtime and turns its result into an exit code.
fn block_on(command: impl std::future::Future<Output = Result<i32, Error>>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            report_error(&Error::infrastructure(
                format!("cannot start the async runtime: {error}"),
                None,
            ));
            return exit_codes::INFRASTRUCTURE;
        }
    };
    match runtime.block_on(command) {
        Ok(code) => code,
        Err(error) => {
            report_error(&error);
            error.exit_code()
        }
    }
}

async fn run_async(
    arguments: RunArgs,
    docker: Option<crate::docker::Prepared>,
) -> Result<i32, Error> {
    use crate::report::{Event, Progress, ProgressMode, Style, render_summary};
    use crate::run::{Keep, RunOptions};

    // Held for the whole run: dropping it closes the relay's socket.
    let _relay = docker
        .map(crate::docker::Prepared::start_relay)
        .transpose()
        .map_err(|e| Error::infrastructure(e.to_string(), None))?;

    let (scenario, topology) = load(&arguments.scenario)?;
    let provider = arguments
        .provider
        .as_deref()
        .map(parse_provider)
        .transpose()?;
    let options = RunOptions {
        provider,
        jobs: usize::from(arguments.jobs),
        run_dir: arguments.run_dir.clone(),
        json: arguments.json.clone(),
        junit: arguments.junit.clone(),
        verify_timeout: arguments.timeout,
        isolation: arguments.isolation,
        secrets: secret_source(arguments.seed),
        keep: if arguments.keep {
            Keep::Always
        } else if arguments.keep_on_failure {
            Keep::OnFailure
        } else {
            Keep::Never
        },
        ..RunOptions::default()
    };
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Progress::stderr(
        ProgressMode::detect(arguments.quiet),
    )));
    let emit = {
        let progress = std::sync::Arc::clone(&progress);
        move |event: Event| {
            if let Ok(mut progress) = progress.lock() {
                progress.handle(&event);
            }
        }
    };
    // First Ctrl-C: stop new work and tear down. Second: exit at once.
    let cancel = options.cancel.clone();
    let interrupt_progress = std::sync::Arc::clone(&progress);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
            if let Ok(mut progress) = interrupt_progress.lock() {
                progress.handle(&Event::Interrupted);
            }
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(exit_codes::INTERRUPTED);
            }
        }
    });
    let outcome = crate::run::run(&scenario, &topology, &options, &emit).await;
    if let Ok(mut progress) = progress.lock() {
        progress.finish();
    }
    let outcome = outcome?;
    print!("{}", render_summary(&outcome.report, Style::for_stdout()));
    println!("run directory: {}", outcome.run_dir.display());
    Ok(if outcome.report.passed {
        exit_codes::OK
    } else {
        exit_codes::EXPECTATION_NOT_MET
    })
}

async fn doctor(
    scenario: Option<PathBuf>,
    provider: Option<String>,
    isolation: Isolation,
) -> Result<i32, Error> {
    use crate::provider::kind::{Requirements, preflight};

    let loaded = scenario.as_deref().map(load).transpose()?;
    let provider = match provider.as_deref().map(parse_provider).transpose()? {
        Some(provider) => provider,
        None => loaded
            .as_ref()
            .and_then(|(s, _)| s.provider)
            .unwrap_or(scenario::ProviderName::Kind),
    };
    let environment = crate::process::Environment::inherit();
    // Without a scenario: the guide's two clusters of one organization each.
    let requirements = match &loaded {
        Some((scenario, _)) => Requirements {
            clusters: scenario.clusters.len(),
            organizations: scenario.organizations.len(),
        },
        None => Requirements {
            clusters: 2,
            organizations: 2,
        },
    };
    match provider {
        scenario::ProviderName::Sim if isolation == Isolation::Containers => {
            let found = crate::provider::containers::doctor(loaded.as_ref().map(|(s, _)| s))
                .await
                .map_err(|e| Error::infrastructure(e.to_string(), None))?;
            println!("ok: {found}");
            Ok(exit_codes::OK)
        }
        scenario::ProviderName::Sim => {
            println!("ok: the simulator needs no tools, cluster or network");
            Ok(exit_codes::OK)
        }
        scenario::ProviderName::Existing => {
            let version = crate::deploy::helm::detect_version(&environment)
                .await
                .map_err(|e| {
                    Error::infrastructure(
                        format!("preflight failed: {e}"),
                        Some("install helm 3 or 4: https://helm.sh/docs/intro/install/".into()),
                    )
                })?;
            println!("ok: helm {}", version.text);
            Ok(exit_codes::OK)
        }
        scenario::ProviderName::K3s => {
            let found = crate::provider::k3s::doctor(&environment, requirements)
                .await
                .map_err(|e| Error::infrastructure(e.to_string(), None))?;
            println!("ok: {found}");
            Ok(exit_codes::OK)
        }
        scenario::ProviderName::Kind => match preflight(&environment, requirements).await {
            Ok(found) => {
                println!(
                    "ok: docker {}, kind {}, helm {}; enough memory and inotify instances for {} clusters and {} organizations",
                    found.docker,
                    found.kind,
                    found.helm.text,
                    requirements.clusters,
                    requirements.organizations
                );
                Ok(exit_codes::OK)
            }
            Err(error) => Err(Error::infrastructure(error.to_string(), None)),
        },
    }
}

async fn down(run: Option<String>) -> Result<i32, Error> {
    let mut swept_something = false;
    let mut problems = Vec::new();
    match crate::process::find_program("kind") {
        Some(_) => match down_kind(run.as_deref()).await {
            Ok(()) => swept_something = true,
            Err(error) => problems.push(error),
        },
        None => println!("kind is not on PATH: no kind clusters checked"),
    }
    match crate::docker::connect().await {
        Ok(docker) => match crate::docker::sweep(&docker, run.as_deref()).await {
            Ok(swept) => {
                swept_something = true;
                if swept.containers.is_empty() && swept.networks.is_empty() {
                    println!("no orgmesh containers or networks to remove");
                } else {
                    println!(
                        "removed {} container{} and {} network{} labelled {}: {}",
                        swept.containers.len(),
                        if swept.containers.len() == 1 { "" } else { "s" },
                        swept.networks.len(),
                        if swept.networks.len() == 1 { "" } else { "s" },
                        crate::docker::RUN_LABEL,
                        swept
                            .containers
                            .iter()
                            .chain(&swept.networks)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            Err(error) => problems.push(Error::infrastructure(error.to_string(), None)),
        },
        Err(_) => println!("Docker is not reachable: no containers or networks checked"),
    }
    match problems.into_iter().next() {
        Some(problem) => Err(problem),
        None if !swept_something => Err(Error::infrastructure(
            "nothing to check: neither kind nor Docker is available",
            Some("install kind, or start the Docker engine".into()),
        )),
        None => Ok(exit_codes::OK),
    }
}

/// Deletes the kind clusters of one run, or every `orgmesh-` cluster.
async fn down_kind(run: Option<&str>) -> Result<(), Error> {
    use crate::provider::kind;

    let environment = crate::process::Environment::inherit();
    let listing = match run {
        Some(run_id) => kind::run_clusters(&environment, run_id).await,
        None => kind::orgmesh_clusters(&environment).await,
    };
    let names = listing.map_err(|e| {
        Error::infrastructure(e.to_string(), Some("is kind installed and on PATH?".into()))
    })?;
    if names.is_empty() {
        println!("no orgmesh clusters to delete");
        return Ok(());
    }
    // `kind delete` edits the kubeconfig it is given: give it a scratch one, never the user's.
    let scratch =
        std::env::temp_dir().join(format!("orgmesh-down-{}.kubeconfig", std::process::id()));
    let clusters: Vec<(String, Option<PathBuf>)> = names
        .iter()
        .map(|n| (n.clone(), Some(scratch.clone())))
        .collect();
    let result = kind::delete_clusters_with_kubeconfig(&environment, &clusters).await;
    let _ = fs::remove_file(&scratch);
    result.map_err(|e| Error::infrastructure(e.to_string(), None))?;
    println!(
        "deleted {} cluster{}: {}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    );
    Ok(())
}

async fn sim_node(action: SimNodeAction) -> Result<i32, Error> {
    use crate::provider::containers::node;
    match action {
        SimNodeAction::Serve { http_timeout } => {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| Error::infrastructure(e.to_string(), None))?;
            tokio::select! {
                served = node::serve(http_timeout) => served
                    .map(|()| exit_codes::OK)
                    .map_err(|e| Error::infrastructure(format!("sim-node: {e}"), None)),
                // PID 1 of a container has no default signal handlers: stop on SIGTERM.
                _ = terminate.recv() => Ok(exit_codes::OK),
            }
        }
        SimNodeAction::Exec { organization, argv } => {
            // The table command and the probe time out per peer; this bounds the whole call.
            Ok(node::exec(&organization, &argv, std::time::Duration::from_secs(600)).await)
        }
    }
}

async fn build_image() -> Result<i32, Error> {
    let reference = crate::image::build(&crate::process::Environment::inherit())
        .await
        .map_err(|e| {
            Error::infrastructure(
                crate::error::error_chain(&e),
                Some("the image needs a running Docker engine (`docker info`)".into()),
            )
        })?;
    println!("{reference}");
    Ok(exit_codes::OK)
}
