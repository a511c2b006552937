//! Live progress while a run is under way, built from [`Event`]s.
//!
//! Three modes: progress bars on a terminal, one plain line per event for CI logs (which
//! cannot redraw and are read after the fact), and quiet. The reporter only writes; a write
//! that fails (a closed pipe) is ignored, because losing progress output must not change the
//! run's outcome, which the report files still record.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::events::{Action, Event, Outcome};
use super::terminal::format_duration;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar per phase on standard error, redrawn in place; only for a terminal.
    Bars,
    /// One plain line per event, for CI logs and pipes.
    Lines,
    /// Only warnings and the interrupt notice, which the user must see whatever they asked.
    Quiet,
}

impl ProgressMode {
    /// Bars when standard error is a terminal that can redraw, plain lines otherwise, and
    /// quiet when the user asked for it.
    pub fn detect(quiet: bool) -> Self {
        use std::io::IsTerminal as _;
        let is_dumb = std::env::var_os("TERM").is_some_and(|term| term == "dumb");
        if quiet {
            Self::Quiet
        } else if std::io::stderr().is_terminal() && !is_dumb {
            Self::Bars
        } else {
            Self::Lines
        }
    }
}

/// Which modes show a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Importance {
    /// Shown only as plain lines; bars already show it (an organization starting or finishing).
    Detail,
    /// Shown as plain lines and above the bars (a failure, a phase's total).
    Summary,
    /// Shown in every mode, quiet included (warnings, the interrupt notice).
    Always,
}

/// A phase that has started and not finished.
#[derive(Debug)]
struct OpenPhase {
    name: String,
    total: usize,
    done: usize,
    failed: usize,
    /// Organizations in flight, shown after the bar.
    running: Vec<String>,
    bar: Option<ProgressBar>,
}

/// Consumes run events and shows them according to its [`ProgressMode`].
pub struct Progress {
    mode: ProgressMode,
    writer: Box<dyn Write + Send>,
    /// Draws the bars; present only in [`ProgressMode::Bars`].
    bars: Option<MultiProgress>,
    phases: Vec<OpenPhase>,
    teardown: Option<ProgressBar>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Progress")
            .field("mode", &self.mode)
            .field("phases", &self.phases)
            .finish_non_exhaustive()
    }
}

const BAR_TEMPLATE: &str = "{prefix:>10} [{bar:30}] {pos}/{len} {wide_msg}";
const SPINNER_TEMPLATE: &str = "{prefix:>10} {spinner} {elapsed}";

impl Progress {
    /// A reporter writing its lines to `writer`. In [`ProgressMode::Bars`] the bars are drawn
    /// on standard error and lines are written to `writer` with the bars cleared around them,
    /// so `writer` should be standard error too.
    pub fn new(mode: ProgressMode, writer: Box<dyn Write + Send>) -> Self {
        Self::with_draw_target(mode, writer, ProgressDrawTarget::stderr())
    }

    /// A reporter writing to standard error, the usual place for progress.
    pub fn stderr(mode: ProgressMode) -> Self {
        Self::new(mode, Box::new(std::io::stderr()))
    }

    fn with_draw_target(
        mode: ProgressMode,
        writer: Box<dyn Write + Send>,
        target: ProgressDrawTarget,
    ) -> Self {
        let bars = (mode == ProgressMode::Bars).then(|| MultiProgress::with_draw_target(target));
        Self {
            mode,
            writer,
            bars,
            phases: Vec::new(),
            teardown: None,
        }
    }

    /// Shows one event.
    pub fn handle(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                scenario,
                provider,
                run_id,
                run_dir,
                organizations,
                links,
            } => self.run_started(scenario, provider, run_id, run_dir, *organizations, *links),
            Event::PhaseStarted { phase, total } => self.phase_started(phase, *total),
            Event::PhaseFinished { phase, duration } => self.phase_finished(phase, *duration),
            Event::ClusterReady { cluster, address } => {
                // A ready cluster is one unit of work of the phase bringing clusters up.
                if let Some(open) = self.phases.last_mut() {
                    open.done += 1;
                    if let Some(bar) = &open.bar {
                        bar.inc(1);
                    }
                }
                let line = format!(
                    "{}: cluster {cluster} ready at {address}",
                    self.current_phase_name()
                );
                self.emit(Importance::Summary, &line);
            }
            Event::OrganizationStarted {
                organization,
                action,
            } => self.organization_started(organization, *action),
            Event::OrganizationFinished {
                organization,
                action,
                outcome,
            } => self.organization_finished(organization, *action, outcome),
            Event::Warning { message } => {
                self.emit(Importance::Always, &format!("warning: {message}"));
            }
            Event::Interrupted => self.emit(
                Importance::Always,
                "interrupted: stopping new work and tearing down \
                 (press Ctrl-C again to exit now)",
            ),
            Event::TeardownStarted => self.teardown_started(),
            Event::TeardownFinished { duration } => {
                if let Some(spinner) = self.teardown.take() {
                    spinner.finish_and_clear();
                }
                let line = format!("teardown: done ({})", format_duration(*duration));
                self.emit(Importance::Summary, &line);
            }
        }
    }

    /// Clears any bars still drawn and flushes the writer; call it before printing the
    /// summary so the two do not interleave.
    pub fn finish(&mut self) {
        for phase in &mut self.phases {
            if let Some(bar) = phase.bar.take() {
                bar.finish_and_clear();
            }
        }
        if let Some(spinner) = self.teardown.take() {
            spinner.finish_and_clear();
        }
        // Ignored on purpose: see the module documentation.
        let _ = self.writer.flush();
    }

    fn run_started(
        &mut self,
        scenario: &str,
        provider: &str,
        run_id: &str,
        run_dir: &Path,
        organizations: usize,
        links: usize,
    ) {
        let line = format!(
            "orgmesh: run {run_id} ({provider}): scenario {scenario}, {}, {}, run dir {}",
            plural(organizations, "organization"),
            plural(links, "directed link"),
            run_dir.display(),
        );
        self.emit(Importance::Summary, &line);
    }

    fn phase_started(&mut self, phase: &str, total: usize) {
        let bar = self.bars.as_ref().map(|bars| {
            let style = ProgressStyle::with_template(BAR_TEMPLATE)
                // The template is a constant, so this fallback only guards against an
                // indicatif upgrade changing its syntax.
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("##-");
            let bar = bars.add(ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX)));
            bar.set_style(style);
            bar.set_prefix(phase.to_owned());
            bar
        });
        self.phases.push(OpenPhase {
            name: phase.to_owned(),
            total,
            done: 0,
            failed: 0,
            running: Vec::new(),
            bar,
        });
        let line = format!("{phase}: started, {}", plural(total, unit(phase)));
        self.emit(Importance::Detail, &line);
    }

    fn phase_finished(&mut self, phase: &str, duration: Duration) {
        let position = self.phases.iter().rposition(|open| open.name == phase);
        let line = match position.map(|position| self.phases.remove(position)) {
            Some(mut open) => {
                if let Some(bar) = open.bar.take() {
                    bar.finish_and_clear();
                }
                let failed = if open.failed > 0 {
                    format!(", {} FAILED", open.failed)
                } else {
                    String::new()
                };
                format!(
                    "{phase}: {}/{} done{failed} ({})",
                    open.done,
                    plural(open.total, unit(phase)),
                    format_duration(duration)
                )
            }
            // A phase the reporter never saw start still gets its timing shown.
            None => format!("{phase}: done ({})", format_duration(duration)),
        };
        self.emit(Importance::Summary, &line);
    }

    fn organization_started(&mut self, organization: &str, action: Action) {
        if let Some(open) = self.phases.last_mut() {
            open.running.push(organization.to_owned());
            if let Some(bar) = &open.bar {
                bar.set_message(open.running.join(", "));
            }
        }
        let line = format!(
            "{}: {organization} {action} started",
            self.current_phase_name()
        );
        self.emit(Importance::Detail, &line);
    }

    fn organization_finished(&mut self, organization: &str, action: Action, outcome: &Outcome) {
        if let Some(open) = self.phases.last_mut() {
            open.running.retain(|running| running != organization);
            if outcome.is_failed() {
                open.failed += 1;
            } else {
                open.done += 1;
            }
            if let Some(bar) = &open.bar {
                bar.inc(1);
                bar.set_message(open.running.join(", "));
            }
        }
        let phase = self.current_phase_name();
        let duration = format_duration(outcome.duration());
        match outcome {
            Outcome::Done { .. } => {
                let line = format!("{phase}: {organization} {action} done ({duration})");
                self.emit(Importance::Detail, &line);
            }
            Outcome::Failed { message, .. } => {
                let line =
                    format!("{phase}: {organization} {action} FAILED ({duration}): {message}");
                self.emit(Importance::Summary, &line);
            }
        }
    }

    fn teardown_started(&mut self) {
        self.teardown = self.bars.as_ref().map(|bars| {
            let style = ProgressStyle::with_template(SPINNER_TEMPLATE)
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let spinner = bars.add(ProgressBar::new_spinner());
            spinner.set_style(style);
            spinner.set_prefix("teardown");
            spinner.enable_steady_tick(Duration::from_millis(120));
            spinner
        });
        self.emit(Importance::Detail, "teardown: started");
    }

    /// The prefix of organization lines: the phase they belong to.
    fn current_phase_name(&self) -> String {
        self.phases
            .last()
            .map_or_else(|| "orgmesh".to_owned(), |open| open.name.clone())
    }

    fn emit(&mut self, importance: Importance, line: &str) {
        let shown = match self.mode {
            ProgressMode::Lines => true,
            ProgressMode::Bars => importance >= Importance::Summary,
            ProgressMode::Quiet => importance == Importance::Always,
        };
        if !shown {
            return;
        }
        let writer = &mut self.writer;
        // Write errors are ignored on purpose: see the module documentation.
        match &self.bars {
            // Suspending clears the bars, so the line lands above them rather than inside.
            Some(bars) => bars.suspend(|| {
                let _ = writeln!(writer, "{line}");
            }),
            None => {
                let _ = writeln!(writer, "{line}");
            }
        }
    }
}

/// What a phase counts: the clusters phase works on clusters, every other on organizations.
fn unit(phase: &str) -> &'static str {
    if phase.starts_with("cluster") {
        "cluster"
    } else {
        "organization"
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer the test can read back after the reporter is done with it.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buffer);
            Ok(buffer.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn millis(milliseconds: u64) -> Duration {
        Duration::from_millis(milliseconds)
    }

    fn run_events() -> Vec<Event> {
        let organization = |name: &str, action, outcome| Event::OrganizationFinished {
            organization: name.to_owned(),
            action,
            outcome,
        };
        let started = |name: &str, action| Event::OrganizationStarted {
            organization: name.to_owned(),
            action,
        };
        vec![
            Event::RunStarted {
                scenario: "two-organizations".to_owned(),
                provider: "sim".to_owned(),
                run_id: "r-1a2b".to_owned(),
                run_dir: "./orgmesh-runs/r-1a2b".into(),
                organizations: 2,
                links: 4,
            },
            Event::PhaseStarted {
                phase: "clusters".to_owned(),
                total: 1,
            },
            Event::ClusterReady {
                cluster: "cluster-1".to_owned(),
                address: "127.0.1.1".to_owned(),
            },
            Event::PhaseFinished {
                phase: "clusters".to_owned(),
                duration: millis(8),
            },
            Event::PhaseStarted {
                phase: "deploy".to_owned(),
                total: 2,
            },
            started("ingen", Action::Install),
            started("biotechnica", Action::Install),
            organization(
                "ingen",
                Action::Install,
                Outcome::Done {
                    duration: millis(123),
                },
            ),
            organization(
                "biotechnica",
                Action::Install,
                Outcome::Done {
                    duration: millis(1_250),
                },
            ),
            Event::PhaseFinished {
                phase: "deploy".to_owned(),
                duration: millis(1_300),
            },
            Event::PhaseStarted {
                phase: "link".to_owned(),
                total: 2,
            },
            Event::Warning {
                message: "cluster-1 answers slowly; consider a longer --timeout".to_owned(),
            },
            organization(
                "ingen",
                Action::Upgrade,
                Outcome::Done {
                    duration: millis(400),
                },
            ),
            organization(
                "biotechnica",
                Action::Upgrade,
                Outcome::Failed {
                    duration: millis(1_000),
                    message: "helm upgrade exited with 1".to_owned(),
                },
            ),
            Event::PhaseFinished {
                phase: "link".to_owned(),
                duration: millis(1_010),
            },
            Event::Interrupted,
            Event::TeardownStarted,
            Event::TeardownFinished {
                duration: millis(12),
            },
        ]
    }

    fn replay(mode: ProgressMode) -> String {
        let captured = Captured::default();
        let mut progress = Progress::with_draw_target(
            mode,
            Box::new(captured.clone()),
            ProgressDrawTarget::hidden(),
        );
        for event in run_events() {
            progress.handle(&event);
        }
        progress.finish();
        captured.text()
    }

    #[test]
    fn lines_mode_prints_one_line_per_event() {
        insta::assert_snapshot!(replay(ProgressMode::Lines), @r"
        orgmesh: run r-1a2b (sim): scenario two-organizations, 2 organizations, 4 directed links, run dir ./orgmesh-runs/r-1a2b
        clusters: started, 1 cluster
        clusters: cluster cluster-1 ready at 127.0.1.1
        clusters: 1/1 cluster done (0.01s)
        deploy: started, 2 organizations
        deploy: ingen install started
        deploy: biotechnica install started
        deploy: ingen install done (0.12s)
        deploy: biotechnica install done (1.3s)
        deploy: 2/2 organizations done (1.3s)
        link: started, 2 organizations
        warning: cluster-1 answers slowly; consider a longer --timeout
        link: ingen upgrade done (0.40s)
        link: biotechnica upgrade FAILED (1.0s): helm upgrade exited with 1
        link: 1/2 organizations done, 1 FAILED (1.0s)
        interrupted: stopping new work and tearing down (press Ctrl-C again to exit now)
        teardown: started
        teardown: done (0.01s)
        ");
    }

    #[test]
    fn bars_mode_prints_only_summaries_above_the_bars() {
        let text = replay(ProgressMode::Bars);
        assert!(text.contains("link: biotechnica upgrade FAILED (1.0s)"));
        assert!(text.contains("warning: cluster-1 answers slowly"));
        assert!(text.contains("deploy: 2/2 organizations done (1.3s)"));
        assert!(!text.contains("ingen install started"));
        assert!(!text.contains("ingen install done"));
    }

    #[test]
    fn quiet_mode_prints_only_what_must_be_seen() {
        insta::assert_snapshot!(replay(ProgressMode::Quiet), @r"
        warning: cluster-1 answers slowly; consider a longer --timeout
        interrupted: stopping new work and tearing down (press Ctrl-C again to exit now)
        ");
    }

    #[test]
    fn quiet_is_quiet_whatever_the_terminal() {
        assert_eq!(ProgressMode::detect(true), ProgressMode::Quiet);
    }
}
