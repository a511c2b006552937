//! The commands `kubectl exec` can run in a simulated server container: the guide's
//! `./manage.py get_outgoing_organization` and the harness's credential probe
//! (`./manage.py shell -c PROBE_SCRIPT`), with the real commands' output and exit codes.
//!
//! [`parse_command`] and the output renderers are pure; [`run`] does the peer requests.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::Semaphore;

use super::client::{PeerOutcome, PeerRequest, send};
use super::registry::ChannelOrganization;
use crate::verify::probe::{PROBE_SCRIPT, ProbeLine, ProbeStatus, format_probe_output};
use crate::verify::table::{OutgoingRow, format_outgoing_table};

/// What a command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

impl ExecOutput {
    fn failure(exit_code: i32, stderr: String) -> Self {
        Self {
            stdout: String::new(),
            stderr,
            exit_code,
        }
    }

    fn success(stdout: String) -> Self {
        Self {
            stdout,
            stderr: String::new(),
            exit_code: 0,
        }
    }
}

/// A recognised argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `get_outgoing_organization [--no-color] [organization_id]`.
    OutgoingTable { organization_id: Option<String> },
    /// `shell -c PROBE_SCRIPT`.
    Probe,
    /// Anything the sim answers without running: the output to give.
    Fixed(ExecOutput),
}

/// The options every Django management command accepts that do not change the output.
const IGNORED_OPTIONS: [&str; 4] = [
    "--no-color",
    "--force-color",
    "--traceback",
    "--skip-checks",
];

/// Recognises an argv run in the server container.
pub fn parse_command(argv: &[String]) -> Command {
    let Some(program) = argv.first() else {
        return Command::Fixed(ExecOutput::failure(
            1,
            "error: you must specify at least one command for the container\n".to_owned(),
        ));
    };
    if program != "./manage.py" && program != "manage.py" && program != "/usr/src/app/manage.py" {
        // What the container runtime reports for a program that is not in the image.
        return Command::Fixed(ExecOutput::failure(
            127,
            format!(
                "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": executable file not found in $PATH: unknown\n"
            ),
        ));
    }
    let Some(subcommand) = argv.get(1) else {
        return Command::Fixed(ExecOutput::failure(
            1,
            "Type 'manage.py help <subcommand>' for help on a specific subcommand.\n".to_owned(),
        ));
    };
    let arguments = &argv[2..];
    match subcommand.as_str() {
        "get_outgoing_organization" => {
            let mut organization_id = None;
            let mut unrecognized = Vec::new();
            for argument in arguments {
                if IGNORED_OPTIONS.contains(&argument.as_str()) {
                    continue;
                }
                if argument.starts_with('-') || organization_id.is_some() {
                    unrecognized.push(argument.as_str());
                } else {
                    organization_id = Some(argument.clone());
                }
            }
            if unrecognized.is_empty() {
                Command::OutgoingTable { organization_id }
            } else {
                Command::Fixed(ExecOutput::failure(
                    2,
                    format!(
                        "usage: manage.py get_outgoing_organization [-h] [--no-color] [--force-color] [--skip-checks] [organization_id]\nmanage.py get_outgoing_organization: error: unrecognized arguments: {}\n",
                        unrecognized.join(" ")
                    ),
                ))
            }
        }
        "shell" => match arguments {
            [flag, script] if (flag == "-c" || flag == "--command") && script == PROBE_SCRIPT => {
                Command::Probe
            }
            _ => Command::Fixed(ExecOutput::failure(
                1,
                "orgmesh sim: `manage.py shell` only runs the orgmesh credential probe (verify::probe::PROBE_SCRIPT)\n"
                    .to_owned(),
            )),
        },
        other => Command::Fixed(ExecOutput::failure(
            1,
            format!("Unknown command: '{other}'\nType 'manage.py help' for usage.\n"),
        )),
    }
}

/// Python's `repr` of a string, for the KeyError line.
pub fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut output = String::with_capacity(text.len() + 2);
    output.push(quote);
    for c in text.chars() {
        match c {
            '\\' => output.push_str("\\\\"),
            '\n' => output.push_str("\\n"),
            '\t' => output.push_str("\\t"),
            '\r' => output.push_str("\\r"),
            c if c == quote => {
                output.push('\\');
                output.push(c);
            }
            c => output.push(c),
        }
    }
    output.push(quote);
    output
}

/// The crash of `get_outgoing_organization` when an outgoing organization has no
/// `ChannelOrganization` row. The frames are abbreviated; only the last line carries meaning.
pub fn key_error_traceback(organization_id: &str) -> String {
    format!(
        "Traceback (most recent call last):\n  File \"/usr/src/app/./manage.py\", line 22, in <module>\n    main()\n  File \"/usr/local/lib/python3.12/site-packages/django/core/management/base.py\", line 459, in execute\n    output = self.handle(*args, **options)\n             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n  File \"/usr/src/app/organization/management/commands/get_outgoing_organization.py\", in handle\n    org_address = outgoing_channel_org[organization.organization_id]\nKeyError: {}\n",
        python_repr(organization_id)
    )
}

/// Everything a command needs from the simulated network, copied out of the locks so no lock
/// is held while requests are in flight.
pub struct ExecContext {
    pub msp_id: String,
    pub source: Ipv4Addr,
    /// `(organization_id, secret)` in database order.
    pub outgoing: Vec<(String, String)>,
    pub channel_organizations: Vec<ChannelOrganization>,
    /// `(from, to)` cluster address pairs whose traffic is dropped.
    pub partitions: HashSet<(Ipv4Addr, Ipv4Addr)>,
    pub timeout: Duration,
    /// Shared by every exec of the network: bounds the sockets open at once (client and
    /// server side) well below common file-descriptor limits however many execs run.
    pub request_permits: Arc<Semaphore>,
}

impl ExecContext {
    async fn get(
        &self,
        url: String,
        credentials: Option<(String, String)>,
        channel: Option<String>,
    ) -> PeerOutcome {
        // The semaphore is never closed; without a permit the request simply goes ahead.
        let _permit = self.request_permits.acquire().await.ok();
        let request = PeerRequest {
            source: self.source,
            url,
            credentials,
            channel,
        };
        send(
            &request,
            |from, to| self.partitions.contains(&(from, to)),
            self.timeout,
        )
        .await
    }
}

async fn outgoing_table(context: &ExecContext, organization_id: Option<&str>) -> ExecOutput {
    // The command builds `{organization_id: address}` from every row; a later row wins.
    let addresses: HashMap<&str, &str> = context
        .channel_organizations
        .iter()
        .map(|row| (row.organization_id.as_str(), row.address.as_str()))
        .collect();
    let mut targets = Vec::new();
    for (id, _secret) in &context.outgoing {
        if organization_id.is_some_and(|wanted| wanted != id) {
            continue;
        }
        let Some(address) = addresses.get(id.as_str()) else {
            return ExecOutput::failure(1, key_error_traceback(id));
        };
        targets.push((id, *address));
    }
    let outcomes = join_all(
        targets
            .iter()
            .map(|(_, address)| context.get(format!("{address}/info/"), None, None)),
    )
    .await;
    let rows: Vec<OutgoingRow> = targets
        .iter()
        .zip(outcomes)
        .map(|((id, address), outcome)| OutgoingRow {
            org_id: (*id).clone(),
            address: (*address).to_owned(),
            status: outcome.cell(),
        })
        .collect();
    ExecOutput::success(format_outgoing_table(&rows))
}

async fn probe(context: &ExecContext) -> ExecOutput {
    let mut pending = Vec::new();
    let mut lines = Vec::new();
    for (id, secret) in &context.outgoing {
        let rows: Vec<&ChannelOrganization> = context
            .channel_organizations
            .iter()
            .filter(|row| &row.organization_id == id)
            .collect();
        if rows.is_empty() {
            lines.push(ProbeLine {
                org_id: id.clone(),
                channel: None,
                address: None,
                status: ProbeStatus::Unsynced,
            });
        }
        for row in rows {
            pending.push((lines.len(), row, secret));
            lines.push(ProbeLine {
                org_id: id.clone(),
                channel: Some(row.channel.clone()),
                address: Some(row.address.clone()),
                status: ProbeStatus::Unsynced,
            });
        }
    }
    let outcomes = join_all(pending.iter().map(|(_, row, secret)| {
        context.get(
            format!("{}/model/", row.address.trim_end_matches('/')),
            Some((context.msp_id.clone(), (*secret).clone())),
            Some(row.channel.clone()),
        )
    }))
    .await;
    for ((index, _, _), outcome) in pending.iter().zip(outcomes) {
        if let Some(line) = lines.get_mut(*index) {
            line.status = match outcome {
                PeerOutcome::Status(code) => ProbeStatus::Code(code),
                // The script joins the exception text's words with single spaces.
                PeerOutcome::Error(text) => {
                    ProbeStatus::Error(text.split_whitespace().collect::<Vec<_>>().join(" "))
                }
            };
        }
    }
    ExecOutput::success(format_probe_output(&lines))
}

/// Runs a recognised command.
pub async fn run(command: Command, context: &ExecContext) -> ExecOutput {
    match command {
        Command::OutgoingTable { organization_id } => {
            outgoing_table(context, organization_id.as_deref()).await
        }
        Command::Probe => probe(context).await,
        Command::Fixed(output) => output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::probe::{probe_argv, table_argv};

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| (*word).to_owned()).collect()
    }

    #[test]
    fn the_harness_commands_are_recognised() {
        assert_eq!(
            parse_command(&table_argv()),
            Command::OutgoingTable {
                organization_id: None
            }
        );
        assert_eq!(
            parse_command(&argv(&[
                "./manage.py",
                "get_outgoing_organization",
                "BioMSP"
            ])),
            Command::OutgoingTable {
                organization_id: Some("BioMSP".into())
            }
        );
        assert_eq!(parse_command(&probe_argv()), Command::Probe);
    }

    #[test]
    fn unknown_commands_fail_like_django() {
        let Command::Fixed(output) = parse_command(&argv(&["./manage.py", "sync_users"])) else {
            panic!("not a fixed output");
        };
        assert_eq!(output.exit_code, 1);
        assert!(output.stderr.starts_with("Unknown command: 'sync_users'\n"));
        let Command::Fixed(output) = parse_command(&argv(&["bash"])) else {
            panic!("not a fixed output");
        };
        assert_eq!(output.exit_code, 127);
    }

    #[test]
    fn the_crash_ends_with_the_key_error() {
        assert!(key_error_traceback("BioMSP").ends_with("\nKeyError: 'BioMSP'\n"));
        assert_eq!(python_repr("it's"), "\"it's\"");
    }
}
