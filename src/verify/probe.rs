//! The credential probe: run from organization A's server, it presents A's stored outgoing
//! secret for every peer to that peer's `/model/` endpoint, as the backend itself does when it
//! downloads an asset (facts §6).
//!
//! `get_outgoing_organization` calls `/info/` without credentials, so it proves the route and
//! nothing about the secrets; this probe is what catches mismatched secrets and the guide's
//! `channel` key. It is a `./manage.py shell -c` script so it runs in the real server container
//! with the real database; the simulator recognises the same argv.

/// The Python the probe runs inside the backend. One output line per (outgoing organization,
/// channel the backend knows it in): `ORG_ID<TAB>CHANNEL<TAB>ADDRESS<TAB>STATUS`, where STATUS is
/// an HTTP code or `error <exception text>`; an outgoing organization with no channel row yet
/// (not synced from the orchestrator) gives `ORG_ID - - unsynced`. Tabs separate the fields
/// because an id corrupted by a `channel` key holds a space (`name SECRET`).
pub const PROBE_SCRIPT: &str = r#"import requests
from django.conf import settings
from api.models import ChannelOrganization
from organization.models import OutgoingOrganization
for o in OutgoingOrganization.objects.all():
    rows = list(ChannelOrganization.objects.filter(organization_id=o.organization_id))
    if not rows:
        print("\t".join([o.organization_id, "-", "-", "unsynced"]))
    for c in rows:
        try:
            r = requests.get(c.address.rstrip("/") + "/model/", auth=(settings.MSP_ID, o.secret), headers={"Substra-Channel-Name": c.channel}, timeout=settings.HTTP_CLIENT_TIMEOUT_SECONDS)
            status = str(r.status_code)
        except requests.exceptions.RequestException as exc:
            status = "error " + " ".join(str(exc).split())
        print("\t".join([o.organization_id, c.channel, c.address, status]))
"#;

/// The argv of the outgoing-table command, run in the server container.
pub fn table_argv() -> Vec<String> {
    ["./manage.py", "get_outgoing_organization", "--no-color"]
        .map(String::from)
        .to_vec()
}

/// The argv of the credential probe, run in the server container.
pub fn probe_argv() -> Vec<String> {
    vec![
        "./manage.py".into(),
        "shell".into(),
        "-c".into(),
        PROBE_SCRIPT.into(),
    ]
}

/// What the probe saw for one outgoing organization in one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeLine {
    pub org_id: String,
    pub channel: Option<String>,
    pub address: Option<String>,
    pub status: ProbeStatus,
}

/// The outcome of one probe request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeStatus {
    /// The peer answered with this HTTP status.
    Code(u16),
    /// The request raised; the exception text.
    Error(String),
    /// The backend has no channel row for the peer yet.
    Unsynced,
}

/// Reads the probe's output. Lines that are not probe lines (interpreter warnings) are skipped.
pub fn parse_probe_output(output: &str) -> Vec<ProbeLine> {
    output
        .lines()
        .filter_map(|line| {
            let mut fields = line.trim_end_matches(['\r', '\n']).splitn(4, '\t');
            let (org_id, channel, address, status) = (
                fields.next()?,
                fields.next()?,
                fields.next()?,
                fields.next()?,
            );
            let optional = |field: &str| (field != "-").then(|| field.to_owned());
            let status = if status == "unsynced" {
                ProbeStatus::Unsynced
            } else if let Some(text) = status.strip_prefix("error") {
                ProbeStatus::Error(text.trim_start().to_owned())
            } else if status.len() == 3 {
                ProbeStatus::Code(status.parse().ok()?)
            } else {
                return None;
            };
            Some(ProbeLine {
                org_id: org_id.to_owned(),
                channel: optional(channel),
                address: optional(address),
                status,
            })
        })
        .collect()
}

/// Renders probe lines exactly as [`PROBE_SCRIPT`] prints them.
pub fn format_probe_output(lines: &[ProbeLine]) -> String {
    lines
        .iter()
        .map(|line| {
            let status = match &line.status {
                ProbeStatus::Code(code) => code.to_string(),
                ProbeStatus::Error(text) => format!("error {text}"),
                ProbeStatus::Unsynced => "unsynced".to_owned(),
            };
            format!(
                "{}\t{}\t{}\t{}\n",
                line.org_id,
                line.channel.as_deref().unwrap_or("-"),
                line.address.as_deref().unwrap_or("-"),
                status
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_lines_round_trip() {
        let lines = vec![
            ProbeLine {
                org_id: "BiotechnicaMSP".into(),
                channel: Some("our-channel".into()),
                address: Some("http://127.0.2.1:4000".into()),
                status: ProbeStatus::Code(200),
            },
            ProbeLine {
                org_id: "IngenMSP".into(),
                channel: Some("our-channel".into()),
                address: Some("http://127.0.1.1:4001".into()),
                status: ProbeStatus::Error(
                    "HTTPConnectionPool(host='127.0.1.1', port=4001): Max retries exceeded".into(),
                ),
            },
            ProbeLine {
                org_id: "MalcolmMSP".into(),
                channel: None,
                address: None,
                status: ProbeStatus::Unsynced,
            },
        ];
        let text = format!("warning: something\n{}", format_probe_output(&lines));
        assert_eq!(parse_probe_output(&text), lines);
    }

    #[test]
    fn the_script_prints_the_documented_fields() {
        assert!(
            PROBE_SCRIPT
                .contains(r#"print("\t".join([o.organization_id, c.channel, c.address, status]))"#)
        );
        assert!(PROBE_SCRIPT.contains(r#""unsynced""#));
        assert_eq!(probe_argv()[3], PROBE_SCRIPT);
    }
}
