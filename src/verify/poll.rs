//! Polling one organization's links until every check is settled or the caller's deadline
//! passes (DESIGN §4).
//!
//! A check settles when its observation meets the expectation, or when the same mismatching
//! observation has been seen [`VerifyOptions::stable_attempts`] times in a row. Retryable
//! observations (the table's KeyError crash before peers are synced, `unsynced` probe lines,
//! 429) never settle a check. Table runs are paced per cluster: organizations sharing a
//! cluster share a client IP, and the backend throttles anonymous `/info/` per IP.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::observe::{Seen, auth_from_probe, completeness, last_line, reach_from_table};
use super::probe::{parse_probe_output, probe_argv, table_argv};
use super::table::parse_outgoing_table;
use crate::provider::{Provider, ProviderError};
use crate::report::{CheckKind, CheckResult};
use crate::run::Cancel;
use crate::scenario::{AuthOutcome, Reach};
use crate::topology::Expected;

/// How verification polls.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Nothing is polled after this instant.
    pub deadline: Instant,
    /// A mismatch seen this many times in a row is final.
    pub stable_attempts: u32,
    /// The first pause between attempts; it doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// One link to check from the organization being verified.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub msp_id: String,
    pub expected: Expected,
    /// Whether the peer should be listed in the outgoing table (no `missing-outgoing`).
    pub listed: bool,
}

/// The organization whose outgoing links are checked.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub cluster: String,
    pub targets: Vec<Target>,
}

/// Limits table runs per cluster to stay under the peers' anonymous throttle: every table run
/// sends one `/info/` to each peer from the cluster's address.
#[derive(Debug)]
pub struct Pacer {
    per_minute: usize,
    windows: HashMap<String, Mutex<VecDeque<Instant>>>,
}

impl Pacer {
    /// `throttle_per_minute` is the lowest anonymous rate among the peers; orgmesh keeps 10%
    /// below it.
    pub fn new<'a>(
        clusters: impl IntoIterator<Item = &'a str>,
        throttle_per_minute: u32,
    ) -> Arc<Self> {
        let per_minute = ((throttle_per_minute as usize) * 9 / 10).max(1);
        Arc::new(Self {
            per_minute,
            windows: clusters
                .into_iter()
                .map(|c| (c.to_owned(), Mutex::new(VecDeque::new())))
                .collect(),
        })
    }

    /// Gives back the last table run of a cluster: a table that crashed before building its
    /// rows (KeyError while a peer is unsynced) sent no request.
    async fn refund(&self, cluster: &str) {
        if let Some(window) = self.windows.get(cluster) {
            window.lock().await.pop_back();
        }
    }

    /// Waits until the cluster may run one more table, and records it.
    async fn acquire(&self, cluster: &str) {
        let Some(window) = self.windows.get(cluster) else {
            return;
        };
        let mut window = window.lock().await;
        loop {
            let now = Instant::now();
            while window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
            {
                window.pop_front();
            }
            if window.len() < self.per_minute {
                window.push_back(now);
                return;
            }
            let oldest = window.front().copied().unwrap_or(now);
            tokio::time::sleep(Duration::from_secs(60).saturating_sub(now.duration_since(oldest)))
                .await;
        }
    }
}

/// The state of one check across attempts.
struct Tracker {
    kind: CheckKind,
    to: String,
    expected: String,
    last: Option<(String, Option<String>)>,
    repeats: u32,
    retry_reason: Option<String>,
    settled: Option<bool>,
    attempts: u32,
}

impl Tracker {
    fn new(kind: CheckKind, to: &str, expected: String) -> Self {
        Self {
            kind,
            to: to.to_owned(),
            expected,
            last: None,
            repeats: 0,
            retry_reason: None,
            settled: None,
            attempts: 0,
        }
    }

    fn observe(&mut self, seen: Seen<String>, stable: u32) {
        if self.settled.is_some() {
            return;
        }
        self.attempts += 1;
        match seen {
            Seen::Retry { reason } => {
                self.retry_reason = Some(reason);
                self.repeats = 0;
            }
            Seen::Value { value, detail } => {
                self.retry_reason = None;
                let same = self.last.as_ref().is_some_and(|(v, _)| *v == value);
                self.repeats = if same { self.repeats + 1 } else { 1 };
                let matched = value == self.expected;
                self.last = Some((value, detail));
                if matched {
                    self.settled = Some(true);
                } else if self.repeats >= stable {
                    self.settled = Some(false);
                }
            }
        }
    }

    fn finish(self, from: &str, started: Instant) -> CheckResult {
        let (observed, mut detail) = match self.last {
            Some((value, detail)) => (value, detail),
            None => ("error".to_owned(), None),
        };
        let passed = self.settled.unwrap_or(false) && observed == self.expected;
        if self.settled.is_none() {
            let reason = self
                .retry_reason
                .clone()
                .or(detail.clone())
                .unwrap_or_else(|| "no observation".to_owned());
            detail = Some(format!("not settled before the verify timeout: {reason}"));
        }
        CheckResult {
            // The runner names the verify phase; one source is verified the same way in each.
            step: String::new(),
            check: self.kind,
            from: from.to_owned(),
            to: self.to,
            expected: self.expected,
            observed,
            passed,
            attempts: self.attempts,
            duration_ms: started.elapsed().as_millis() as u64,
            detail,
            diagnostics: None,
        }
    }
}

fn map_seen<T: ToString>(seen: Seen<T>) -> Seen<String> {
    match seen {
        Seen::Value { value, detail } => Seen::Value {
            value: value.to_string(),
            detail,
        },
        Seen::Retry { reason } => Seen::Retry { reason },
    }
}

/// What one run of the outgoing table gave.
enum TableSeen {
    Rows(Vec<super::table::OutgoingRow>),
    /// Not meaningful yet (crash before sync, throttled, exec failed).
    Retry(String),
    /// The source's cluster is stopped.
    Down(String),
}

/// Raw outputs of the last attempt, for diagnostics.
#[derive(Debug, Clone, Default)]
pub struct LastOutputs {
    pub table: String,
    pub probe: String,
}

/// Checks every link from `source`: reach and auth per target, and completeness of the table.
pub async fn verify_source(
    provider: &Provider,
    source: &Source,
    pacer: &Pacer,
    options: &VerifyOptions,
    cancel: &Cancel,
) -> (Vec<CheckResult>, LastOutputs) {
    let started = Instant::now();
    let stable = options.stable_attempts.max(1);
    let mut reach: Vec<Tracker> = source
        .targets
        .iter()
        .map(|t| Tracker::new(CheckKind::Reach, &t.name, t.expected.reach.to_string()))
        .collect();
    let mut auth: Vec<Tracker> = source
        .targets
        .iter()
        .map(|t| Tracker::new(CheckKind::Auth, &t.name, t.expected.auth.to_string()))
        .collect();
    let listed: Vec<&str> = source
        .targets
        .iter()
        .filter(|t| t.listed)
        .map(|t| t.msp_id.as_str())
        .collect();
    let name_of: HashMap<&str, &str> = source
        .targets
        .iter()
        .map(|t| (t.msp_id.as_str(), t.name.as_str()))
        .collect();
    let mut expected_names: Vec<&str> = source
        .targets
        .iter()
        .filter(|t| t.listed)
        .map(|t| t.name.as_str())
        .collect();
    expected_names.sort_unstable();
    let mut complete = Tracker::new(CheckKind::Complete, "*", expected_names.join(","));
    let mut outputs = LastOutputs::default();
    let mut backoff = options.initial_backoff;
    loop {
        let reach_pending = reach.iter().any(|t| t.settled.is_none()) || complete.settled.is_none();
        if reach_pending {
            tokio::select! {
                () = pacer.acquire(&source.cluster) => {}
                () = cancel.cancelled() => break,
            }
            let seen = match provider.exec(&source.name, &table_argv()).await {
                Ok(output) if output.exit_code == 0 => {
                    outputs.table = output.stdout.clone();
                    match parse_outgoing_table(&output.stdout) {
                        Ok(rows) => TableSeen::Rows(rows),
                        Err(error) => TableSeen::Retry(error.to_string()),
                    }
                }
                Ok(output) => {
                    pacer.refund(&source.cluster).await;
                    outputs.table = format!("exit code {}\n{}", output.exit_code, output.stderr);
                    TableSeen::Retry(format!(
                        "get_outgoing_organization failed: {}",
                        last_line(&output.stderr)
                    ))
                }
                Err(error @ ProviderError::ClusterDown { .. }) => {
                    pacer.refund(&source.cluster).await;
                    outputs.table = error.to_string();
                    TableSeen::Down(error.to_string())
                }
                Err(error) => {
                    pacer.refund(&source.cluster).await;
                    TableSeen::Retry(format!("cannot run get_outgoing_organization: {error}"))
                }
            };
            match seen {
                TableSeen::Rows(rows) => {
                    for (tracker, target) in reach.iter_mut().zip(&source.targets) {
                        tracker.observe(map_seen(reach_from_table(&rows, &target.msp_id)), stable);
                    }
                    let (missing, extra) = completeness(&rows, &listed);
                    let mut observed: Vec<&str> = rows
                        .iter()
                        .map(|r| {
                            name_of
                                .get(r.org_id.as_str())
                                .copied()
                                .unwrap_or(r.org_id.as_str())
                        })
                        .collect();
                    observed.sort_unstable();
                    let detail = (!missing.is_empty() || !extra.is_empty()).then(|| {
                        format!(
                            "missing: [{}]; extra: [{}]",
                            missing.join(", "),
                            extra.join(", ")
                        )
                    });
                    complete.observe(
                        Seen::Value {
                            value: observed.join(","),
                            detail,
                        },
                        stable,
                    );
                }
                TableSeen::Down(detail) => {
                    // Nothing runs in a stopped cluster: every link from it is broken.
                    for tracker in reach.iter_mut().chain(std::iter::once(&mut complete)) {
                        tracker.observe(
                            Seen::Value {
                                value: Reach::Error.to_string(),
                                detail: Some(detail.clone()),
                            },
                            stable,
                        );
                    }
                }
                TableSeen::Retry(reason) => {
                    for tracker in reach.iter_mut().chain(std::iter::once(&mut complete)) {
                        tracker.observe(
                            Seen::Retry {
                                reason: reason.clone(),
                            },
                            stable,
                        );
                    }
                }
            }
        }
        if auth.iter().any(|t| t.settled.is_none()) {
            match provider.exec(&source.name, &probe_argv()).await {
                Ok(output) if output.exit_code == 0 => {
                    outputs.probe = output.stdout.clone();
                    let lines = parse_probe_output(&output.stdout);
                    for (tracker, target) in auth.iter_mut().zip(&source.targets) {
                        tracker.observe(map_seen(auth_from_probe(&lines, &target.msp_id)), stable);
                    }
                }
                Ok(output) => {
                    let reason =
                        format!("the credential probe failed: {}", last_line(&output.stderr));
                    outputs.probe = format!("exit code {}\n{}", output.exit_code, output.stderr);
                    for tracker in &mut auth {
                        tracker.observe(
                            Seen::Retry {
                                reason: reason.clone(),
                            },
                            stable,
                        );
                    }
                }
                Err(error @ ProviderError::ClusterDown { .. }) => {
                    outputs.probe = error.to_string();
                    for tracker in &mut auth {
                        tracker.observe(
                            Seen::Value {
                                value: AuthOutcome::Error.to_string(),
                                detail: Some(error.to_string()),
                            },
                            stable,
                        );
                    }
                }
                Err(error) => {
                    let reason = format!("cannot run the credential probe: {error}");
                    for tracker in &mut auth {
                        tracker.observe(
                            Seen::Retry {
                                reason: reason.clone(),
                            },
                            stable,
                        );
                    }
                }
            }
        }
        let pending =
            reach.iter().chain(&auth).any(|t| t.settled.is_none()) || complete.settled.is_none();
        if !pending || Instant::now() + backoff > options.deadline || cancel.is_cancelled() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = cancel.cancelled() => break,
        }
        backoff = (backoff * 2).min(options.max_backoff);
    }
    let mut results: Vec<CheckResult> = Vec::with_capacity(source.targets.len() * 2 + 1);
    results.extend(reach.into_iter().map(|t| t.finish(&source.name, started)));
    results.extend(auth.into_iter().map(|t| t.finish(&source.name, started)));
    results.push(complete.finish(&source.name, started));
    (results, outputs)
}

/// The expected values as report.json writes them.
pub fn expected_texts(expected: &Expected) -> (String, String) {
    (expected.reach.to_string(), expected.auth.to_string())
}

/// Whether an expectation is the healthy one (for the terminal legend).
pub fn is_fault_expectation(reach: Reach, auth: AuthOutcome) -> bool {
    !(reach == Reach::Status(200) && auth == AuthOutcome::Accepted)
}
