//! `orgmesh import`: a customer's backend values files become a scenario (format version 1)
//! that reproduces their network, defects included, without a single secret: `orgmesh run`
//! of it generates new secrets and reproduces each defect as a fault, so the sim shows the
//! customer's broken links.
//!
//! The mapping, in order:
//! - organizations: one per file, named by a DNS-safe form of `organizationName` (else of the
//!   file name), `mspId` as in the file; clusters are left to the default (one each);
//! - channels: each file's `orchestrator.channels`, members the organizations listing them.
//!   Linked organizations that share no channel, and organizations in no channel, are put in
//!   an extra channel `imported-links`, because a scenario links only organizations sharing
//!   one (a comment says so);
//! - links: `mode: explicit`, one pair per unordered {A, B} with any entry in either
//!   direction. `self: true` exactly when every organization has a self entry (incoming or
//!   outgoing naming its own MSP id); otherwise `self: false`, and findings on self links are
//!   comments only. The simplest rule that keeps "non-healthy links = links lint flags";
//! - faults, one per lint finding (see [`crate::lint`]), each preceded by the finding as a
//!   comment, duplicates merged:
//!   `secret-mismatch` → `wrong-secret`; `missing-incoming` and `missing-outgoing` → the same;
//!   `channel-on-entry` on the incoming entries of B → `channel-on-incoming {at: B}` when
//!   every incoming entry of B naming an organization has the key, as the guide writes it (the
//!   fault marks every X→B rejected); when only some have it, `missing-incoming {from: A,
//!   to: B}` per such entry (the backend stores an organization named `msp(A) secret`, so B
//!   has no valid entry for A); on an outgoing entry of A for B → `missing-outgoing {A, B}`
//!   (likewise, A has no row for B);
//!   `whitespace-in-secret` → `missing-incoming` (incoming entry) or `missing-outgoing`
//!   (outgoing entry), for the same reason; `unknown-peer-name` → comment only: the entry
//!   takes no part in link analysis, so the link it meant is already a `missing-*` finding;
//!   `hashed-secret` → comment only: the two sides differ (a `secret-mismatch`, hence a
//!   `wrong-secret`) unless both hold the same hash, which the backend accepts;
//!   `duplicate-entry` → comment only;
//! - a direction of a linked pair with no entry on either side → `missing-outgoing` and
//!   `missing-incoming` on it: the pair has two directed links in a scenario, the customer
//!   has one.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use indexmap::IndexMap;

use crate::error::exit_codes;
use crate::lint::{self, Finding, FindingKind, LintError, LintReport, Side, dns_label};

/// The longest organization name imported: the default cluster is named after it, and
/// cluster names are at most 30 characters.
const MAX_IMPORTED_NAME: usize = 30;

/// The extra channel for linked organizations that share none.
const EXTRA_CHANNEL: &str = "imported-links";

/// Lints `files` and prints the scenario reproducing them.
pub fn import(files: &[PathBuf]) -> Result<String, LintError> {
    let report = lint::lint(files)?;
    Ok(scenario_text(&report))
}

/// `orgmesh import VALUES_FILE...`: prints the scenario to stdout; exit 0, or 2 when some
/// input cannot be read.
pub fn import_command(files: &[PathBuf]) -> i32 {
    match import(files) {
        Ok(text) => {
            print!("{text}");
            exit_codes::OK
        }
        Err(error) => {
            lint::print_error(&error);
            exit_codes::USAGE
        }
    }
}

/// A fault to write, with the findings it comes from.
struct FaultLine {
    fault: String,
    comments: Vec<String>,
}

/// Faults in order of first appearance, duplicates merged, and comment-only notes.
#[derive(Default)]
struct Faults {
    lines: Vec<FaultLine>,
    notes: Vec<String>,
}

impl Faults {
    fn add(&mut self, fault: String, comment: String) {
        match self.lines.iter_mut().find(|line| line.fault == fault) {
            Some(line) => line.comments.push(comment),
            None => self.lines.push(FaultLine {
                fault,
                comments: vec![comment],
            }),
        }
    }
}

/// A YAML comment line's text: one line, no control characters.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A YAML double-quoted scalar (JSON strings are valid YAML).
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn finding_comment(finding: &Finding) -> String {
    comment(&format!(
        "{}:{}: {}: {}",
        finding.file, finding.line, finding.kind, finding.message
    ))
}

/// The scenario reproducing a linted network (see the module documentation).
pub fn scenario_text(report: &LintReport) -> String {
    let organizations = &report.organizations;
    // Scenario names: DNS-safe and unique.
    let mut used = HashSet::new();
    let mut label_of: HashMap<&str, String> = HashMap::new();
    let mut labels = Vec::with_capacity(organizations.len());
    for (index, organization) in organizations.iter().enumerate() {
        let base = dns_label(&organization.name, MAX_IMPORTED_NAME)
            .unwrap_or_else(|| format!("organization-{}", index + 1));
        let mut label = base.clone();
        let mut counter = 2;
        while !used.insert(label.clone()) {
            let suffix = format!("-{counter}");
            let mut stem = base.clone();
            stem.truncate(MAX_IMPORTED_NAME - suffix.len());
            label = format!("{}{suffix}", stem.trim_end_matches('-'));
            counter += 1;
        }
        label_of.insert(organization.name.as_str(), label.clone());
        labels.push(label);
    }
    let label = |name: &str| {
        label_of
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    };
    let mut header = Vec::new();

    // Channels.
    let mut channels: IndexMap<String, Vec<usize>> = IndexMap::new();
    for (index, organization) in organizations.iter().enumerate() {
        for channel in &organization.channels {
            let Some(name) = dns_label(channel, 63) else {
                header.push(format!(
                    "{}: channel {} has no DNS-safe form and is left out",
                    organization.file,
                    quoted(channel)
                ));
                continue;
            };
            if name != *channel {
                header.push(format!(
                    "{}: channel {} is imported as `{name}`",
                    organization.file,
                    quoted(channel)
                ));
            }
            let members = channels.entry(name).or_default();
            if !members.contains(&index) {
                members.push(index);
            }
        }
    }

    // Pairs: any entry between two organizations, in either direction.
    let index_of_msp: HashMap<&str, usize> = organizations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.msp_id.as_str(), i))
        .collect();
    let mut entry_directions: HashSet<(usize, usize)> = HashSet::new();
    for (index, organization) in organizations.iter().enumerate() {
        for side in [Side::Incoming, Side::Outgoing] {
            for entry in organization.entries(side) {
                if let Some(&peer) = index_of_msp.get(entry.name.as_str()) {
                    entry_directions.insert(match side {
                        Side::Incoming => (peer, index),
                        Side::Outgoing => (index, peer),
                    });
                }
            }
        }
    }
    let mut pairs = Vec::new();
    for a in 0..organizations.len() {
        for b in a + 1..organizations.len() {
            if entry_directions.contains(&(a, b)) || entry_directions.contains(&(b, a)) {
                pairs.push((a, b));
            }
        }
    }
    let self_links = !organizations.is_empty()
        && (0..organizations.len()).all(|a| entry_directions.contains(&(a, a)));
    if !self_links {
        header.push(
            "links.self is false: some organization has no self entry, so self links are not reproduced"
                .to_owned(),
        );
    }
    let shares_channel = |channels: &IndexMap<String, Vec<usize>>, a: usize, b: usize| {
        channels
            .values()
            .any(|members| members.contains(&a) && members.contains(&b))
    };
    let mut extra: Vec<usize> = Vec::new();
    for &(a, b) in &pairs {
        if !shares_channel(&channels, a, b) {
            for member in [a, b] {
                if !extra.contains(&member) {
                    extra.push(member);
                }
            }
        }
    }
    if !extra.is_empty() || !channels.is_empty() {
        for index in 0..organizations.len() {
            let in_channel = channels.values().any(|members| members.contains(&index));
            if !in_channel && !extra.contains(&index) {
                extra.push(index);
            }
        }
    }
    if !extra.is_empty() {
        let mut name = EXTRA_CHANNEL.to_owned();
        let mut counter = 2;
        while channels.contains_key(&name) {
            name = format!("{EXTRA_CHANNEL}-{counter}");
            counter += 1;
        }
        header.push(format!(
            "channel `{name}` is not in the files: it holds linked organizations that share no channel, and organizations in none"
        ));
        extra.sort_unstable();
        channels.insert(name, extra);
    }

    // Faults.
    let in_pair = |organization: usize| {
        pairs
            .iter()
            .any(|&(a, b)| a == organization || b == organization)
    };
    let index_of_name: HashMap<&str, usize> = organizations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.name.as_str(), i))
        .collect();
    // `channel-on-incoming` marks every link into an organization: exact only when every
    // incoming entry naming an organization has the key (the guide's text); a single entry
    // with it is a missing incoming entry in effect.
    let every_incoming_has_channel: HashSet<&str> = organizations
        .iter()
        .filter(|organization| {
            let resolved: Vec<_> = organization
                .incoming
                .iter()
                .filter(|entry| index_of_msp.contains_key(entry.name.as_str()))
                .collect();
            !resolved.is_empty() && resolved.iter().all(|entry| entry.channel_line.is_some())
        })
        .map(|organization| organization.name.as_str())
        .collect();
    let mut faults = Faults::default();
    for finding in &report.findings {
        let note = finding_comment(finding);
        let directed = |fault: &str| -> Option<(String, bool)> {
            let (from, to) = (finding.from.as_deref()?, finding.to.as_deref()?);
            Some((
                format!("- {fault}: {{ from: {}, to: {} }}", label(from), label(to)),
                from == to,
            ))
        };
        let fault = match (finding.kind, finding.side) {
            (FindingKind::SecretMismatch, _) => directed("wrong-secret"),
            (FindingKind::MissingIncoming, _) => directed("missing-incoming"),
            (FindingKind::MissingOutgoing, _) => directed("missing-outgoing"),
            (FindingKind::ChannelOnEntry, Some(Side::Incoming))
                if finding
                    .at
                    .as_deref()
                    .is_some_and(|at| !every_incoming_has_channel.contains(at)) =>
            {
                directed("missing-incoming")
            }
            (FindingKind::ChannelOnEntry, Some(Side::Incoming)) => {
                match finding.at.as_deref().zip(finding.from.as_deref()) {
                    Some((at, from)) => {
                        let reproducible = index_of_name
                            .get(at)
                            .is_some_and(|&index| self_links || in_pair(index));
                        reproducible.then(|| {
                            (
                                format!("- channel-on-incoming: {{ at: {} }}", label(at)),
                                from == at && !self_links,
                            )
                        })
                    }
                    None => None,
                }
            }
            (
                FindingKind::ChannelOnEntry | FindingKind::WhitespaceInSecret,
                Some(Side::Outgoing),
            ) => directed("missing-outgoing"),
            (FindingKind::WhitespaceInSecret, Some(Side::Incoming)) => directed("missing-incoming"),
            _ => None,
        };
        match fault {
            Some((_, true)) if !self_links => faults
                .notes
                .push(format!("{note} (not reproduced: links.self is false)")),
            Some((fault, _)) => faults.add(fault, note),
            None => {
                let why = match finding.kind {
                    FindingKind::UnknownPeerName => match &finding.meant {
                        Some(meant) => format!(
                            "no fault of its own: the entry counts as missing, so the link with `{}` is a missing-incoming or missing-outgoing fault",
                            label(meant)
                        ),
                        None => "no fault: the name is no organization's".to_owned(),
                    },
                    FindingKind::HashedSecret => {
                        "no fault of its own: if the other side differs, that is a wrong-secret fault".to_owned()
                    }
                    FindingKind::DuplicateEntry => "no fault: the first entry is reproduced".to_owned(),
                    _ => "no fault: the entry names no given organization".to_owned(),
                };
                faults.notes.push(format!("{note} ({})", comment(&why)));
            }
        }
    }
    // A direction of a linked pair with no entry on either side.
    for &(a, b) in &pairs {
        for (from, to) in [(a, b), (b, a)] {
            if !entry_directions.contains(&(from, to)) {
                let note = format!(
                    "`{}`→`{}` has no entry on either side, while the reverse direction has",
                    labels[from], labels[to]
                );
                for fault in ["missing-outgoing", "missing-incoming"] {
                    faults.add(
                        format!(
                            "- {fault}: {{ from: {}, to: {} }}",
                            labels[from], labels[to]
                        ),
                        note.clone(),
                    );
                }
            }
        }
    }

    // The text.
    let mut text = String::new();
    text.push_str(&format!(
        "# Imported by `orgmesh import` from {} backend values file{}:\n",
        organizations.len(),
        if organizations.len() == 1 { "" } else { "s" }
    ));
    for (organization, label) in organizations.iter().zip(&labels) {
        text.push_str(&comment_line(&format!(
            "  {}: organization `{label}`, mspID {}",
            organization.file, organization.msp_id
        )));
    }
    text.push_str("# No secret is copied: `orgmesh run` generates new ones and reproduces each finding as a fault.\n");
    for line in &header {
        text.push_str(&comment_line(line));
    }
    text.push_str("version: 1\nname: imported\n");
    text.push_str(&format!(
        "description: {}\n",
        quoted(&format!(
            "{} organizations imported from backend values files, {} lint finding(s)",
            organizations.len(),
            report.findings.len()
        ))
    ));
    if channels.is_empty() {
        text.push_str("channels: {}\n");
    } else {
        text.push_str("channels:\n");
        for (name, members) in &channels {
            let members: Vec<&str> = members.iter().map(|&m| labels[m].as_str()).collect();
            text.push_str(&format!("  {name}: [{}]\n", members.join(", ")));
        }
    }
    text.push_str("organizations:\n");
    for (organization, label) in organizations.iter().zip(&labels) {
        text.push_str(&format!(
            "  {label}: {{ mspId: {} }}\n",
            quoted(&organization.msp_id)
        ));
    }
    text.push_str(&format!("links:\n  mode: explicit\n  self: {self_links}\n"));
    if pairs.is_empty() {
        text.push_str("  pairs: []\n");
    } else {
        text.push_str("  pairs:\n");
        for (a, b) in &pairs {
            text.push_str(&format!("    - [{}, {}]\n", labels[*a], labels[*b]));
        }
    }
    if faults.lines.is_empty() && faults.notes.is_empty() {
        text.push_str("faults: []\n");
    } else if faults.lines.is_empty() {
        text.push_str("faults: []\n");
        for note in &faults.notes {
            text.push_str(&comment_line(note));
        }
    } else {
        text.push_str("faults:\n");
        for note in &faults.notes {
            text.push_str(&format!("  # {}\n", comment(note)));
        }
        for line in &faults.lines {
            for note in &line.comments {
                text.push_str(&format!("  # {}\n", comment(note)));
            }
            text.push_str(&format!("  {}\n", line.fault));
        }
    }
    text
}

fn comment_line(text: &str) -> String {
    format!("# {}\n", comment(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_stay_on_one_line() {
        assert_eq!(comment("a\nb\tc"), "a b c");
        assert_eq!(comment_line("x\r\ny"), "# x  y\n");
    }

    #[test]
    fn quoted_scalars_are_yaml() {
        assert_eq!(quoted("IngenMSP"), "\"IngenMSP\"");
        assert_eq!(quoted("a\"b#c"), "\"a\\\"b#c\"");
    }

    #[test]
    fn duplicate_faults_merge_their_comments() {
        let mut faults = Faults::default();
        faults.add("- wrong-secret: { from: a, to: b }".into(), "first".into());
        faults.add("- wrong-secret: { from: a, to: b }".into(), "second".into());
        assert_eq!(faults.lines.len(), 1);
        assert_eq!(faults.lines[0].comments, ["first", "second"]);
    }
}
