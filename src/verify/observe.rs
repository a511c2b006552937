//! Pure predicates: what one table run and one probe run say about each directed link from
//! an organization, and whether an observation meets its expectation (DESIGN §4).

use std::collections::HashMap;

use super::probe::{ProbeLine, ProbeStatus};
use super::table::OutgoingRow;
use crate::scenario::{AuthOutcome, Reach};

/// What was seen for one check in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen<T> {
    /// A definitive observation, with the text that explains it (exception, status...).
    Value { value: T, detail: Option<String> },
    /// Not yet meaningful: the peer is not synced, the table crashed, the peer throttled us.
    Retry { reason: String },
}

impl<T> Seen<T> {
    fn value(value: T) -> Self {
        Self::Value {
            value,
            detail: None,
        }
    }

    fn with_detail(value: T, detail: String) -> Self {
        Self::Value {
            value,
            detail: Some(detail),
        }
    }
}

/// Reach of `to_msp` as seen in `from`'s outgoing table.
pub fn reach_from_table(rows: &[OutgoingRow], to_msp: &str) -> Seen<Reach> {
    let Some(row) = rows.iter().find(|r| r.org_id == to_msp) else {
        return Seen::with_detail(
            Reach::Absent,
            format!("no row for {to_msp} in the outgoing table"),
        );
    };
    match row.status_code() {
        Some(429) => Seen::Retry {
            reason: format!("{to_msp} throttled the anonymous /info/ request (429)"),
        },
        Some(code) if code == 200 => Seen::value(Reach::Status(code)),
        Some(code) => Seen::with_detail(Reach::Status(code), format!("/info/ answered {code}")),
        None => Seen::with_detail(Reach::Error, row.status.clone()),
    }
}

/// Auth of `to_msp` as seen by the credential probe run in `from`.
///
/// A peer known in several channels gives several lines; any acceptance counts, since the
/// secret is per organization, not per channel.
pub fn auth_from_probe(lines: &[ProbeLine], to_msp: &str) -> Seen<AuthOutcome> {
    let mine: Vec<&ProbeLine> = lines.iter().filter(|l| l.org_id == to_msp).collect();
    if mine.is_empty() {
        return Seen::with_detail(
            AuthOutcome::Absent,
            format!("no outgoing entry for {to_msp}: nothing to present"),
        );
    }
    if mine.iter().any(|l| l.status == ProbeStatus::Code(200)) {
        return Seen::value(AuthOutcome::Accepted);
    }
    if let Some(line) = mine.iter().find(|l| l.status == ProbeStatus::Unsynced) {
        return Seen::Retry {
            reason: format!("{} is not synced from the orchestrator yet", line.org_id),
        };
    }
    if mine.iter().any(|l| l.status == ProbeStatus::Code(429)) {
        return Seen::Retry {
            reason: format!("{to_msp} throttled the probe (429)"),
        };
    }
    if mine.iter().any(|l| l.status == ProbeStatus::Code(401)) {
        return Seen::with_detail(
            AuthOutcome::Rejected,
            format!("{to_msp} answered 401 to the credentials"),
        );
    }
    let detail = mine
        .iter()
        .map(|l| match &l.status {
            ProbeStatus::Code(code) => format!("/model/ answered {code}"),
            ProbeStatus::Error(text) => text.clone(),
            ProbeStatus::Unsynced => "unsynced".to_owned(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Seen::with_detail(AuthOutcome::Error, detail)
}

/// The `complete` check: the MSP ids missing from and extra in the table.
pub fn completeness(rows: &[OutgoingRow], expected_msps: &[&str]) -> (Vec<String>, Vec<String>) {
    let listed: HashMap<&str, ()> = rows.iter().map(|r| (r.org_id.as_str(), ())).collect();
    let missing = expected_msps
        .iter()
        .filter(|m| !listed.contains_key(*m))
        .map(|m| (*m).to_owned())
        .collect();
    let expected: HashMap<&str, ()> = expected_msps.iter().map(|m| (*m, ())).collect();
    let extra = rows
        .iter()
        .filter(|r| !expected.contains_key(r.org_id.as_str()))
        .map(|r| r.org_id.clone())
        .collect();
    (missing, extra)
}

/// The last line of a failed command's stderr, e.g. `KeyError: 'BiotechnicaMSP'`.
pub fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(org_id: &str, status: &str) -> OutgoingRow {
        OutgoingRow {
            org_id: org_id.into(),
            address: "http://127.0.2.1:4000".into(),
            status: status.into(),
        }
    }

    fn line(org_id: &str, status: ProbeStatus) -> ProbeLine {
        ProbeLine {
            org_id: org_id.into(),
            channel: Some("c".into()),
            address: Some("http://127.0.2.1:4000".into()),
            status,
        }
    }

    #[test]
    fn reach_reads_codes_exceptions_and_absence() {
        let rows = [
            row("A", "200"),
            row(
                "B",
                "HTTPConnectionPool(host='x', port=1): Max retries exceeded",
            ),
            row("C", "429"),
            row("D", "400"),
        ];
        assert_eq!(
            reach_from_table(&rows, "A"),
            Seen::value(Reach::Status(200))
        );
        assert!(matches!(
            reach_from_table(&rows, "B"),
            Seen::Value {
                value: Reach::Error,
                ..
            }
        ));
        assert!(matches!(reach_from_table(&rows, "C"), Seen::Retry { .. }));
        assert!(matches!(
            reach_from_table(&rows, "D"),
            Seen::Value {
                value: Reach::Status(400),
                ..
            }
        ));
        assert!(matches!(
            reach_from_table(&rows, "E"),
            Seen::Value {
                value: Reach::Absent,
                ..
            }
        ));
    }

    #[test]
    fn auth_reads_the_probe() {
        let lines = [
            line("A", ProbeStatus::Code(200)),
            line("B", ProbeStatus::Code(401)),
            line("C", ProbeStatus::Unsynced),
            line("D", ProbeStatus::Error("refused".into())),
            line("E", ProbeStatus::Code(400)),
            line("F", ProbeStatus::Code(401)),
            line("F", ProbeStatus::Code(200)),
        ];
        assert_eq!(
            auth_from_probe(&lines, "A"),
            Seen::value(AuthOutcome::Accepted)
        );
        assert!(matches!(
            auth_from_probe(&lines, "B"),
            Seen::Value {
                value: AuthOutcome::Rejected,
                ..
            }
        ));
        assert!(matches!(auth_from_probe(&lines, "C"), Seen::Retry { .. }));
        assert!(matches!(
            auth_from_probe(&lines, "D"),
            Seen::Value {
                value: AuthOutcome::Error,
                ..
            }
        ));
        assert!(matches!(
            auth_from_probe(&lines, "E"),
            Seen::Value {
                value: AuthOutcome::Error,
                ..
            }
        ));
        assert_eq!(
            auth_from_probe(&lines, "F"),
            Seen::value(AuthOutcome::Accepted)
        );
        assert!(matches!(
            auth_from_probe(&lines, "G"),
            Seen::Value {
                value: AuthOutcome::Absent,
                ..
            }
        ));
    }

    #[test]
    fn completeness_finds_missing_and_extra() {
        let rows = [row("A", "200"), row("X", "200")];
        assert_eq!(
            completeness(&rows, &["A", "B"]),
            (vec!["B".to_owned()], vec!["X".to_owned()])
        );
    }

    #[test]
    fn last_line_of_a_traceback() {
        assert_eq!(
            last_line("Traceback:\n  File x\nKeyError: 'B'\n\n"),
            "KeyError: 'B'"
        );
    }
}
