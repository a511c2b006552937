//! `orgmesh lint`: static checks of a set of substra-backend values files, one per
//! organization, for the linking defects of facts §7 and DESIGN §3. Pure, except for reading
//! the files.
//!
//! Each file is one organization: its MSP id is `orchestrator.mspID` (required), its name is
//! `organizationName` (or, when absent, a DNS-safe form of the file name), its entries are
//! `addAccountOperator.incomingOrganizations` and `outgoingOrganizations`. Only these keys are
//! read; every other key of a values file is ignored. Files are capped at
//! [`MAX_VALUES_BYTES`] and parsed with the same budget as scenarios, so hostile input is an
//! error (exit 2), never a panic.
//!
//! Definitions. For every ordered pair (A, B), A ≠ B or A = A, the directed link A→B is
//! *intended* when A has an outgoing entry naming msp(B) or B has an incoming entry naming
//! msp(A). Of an intended link:
//! - both entries present and the secrets differ → `secret-mismatch {from: A, to: B}`;
//! - only A's outgoing entry → `missing-incoming {from: A, to: B}`;
//! - only B's incoming entry → `missing-outgoing {from: A, to: B}`.
//!
//! Per entry: a `channel` key → `channel-on-entry {at}` (the chart renders `name secret
//! channel` and the backend splits on the last space, facts §7); a name that is no
//! organization's MSP id → `unknown-peer-name {at, name}` (the message says when it is a
//! peer's `organizationName`), and the entry takes no part in link analysis, so the link it
//! meant is reported as missing on that side; a Django password hash (`pbkdf2_sha256$...`)
//! → `hashed-secret` (the backend hashes what it is given: both sides need the same
//! plaintext); whitespace in a secret → `whitespace-in-secret` (the line no longer splits into
//! name and secret); a second entry with the same name in one list → `duplicate-entry` (link
//! analysis uses the first).
//!
//! Entry findings also carry the link the entry serves (`from`, `to`) when its name resolves,
//! so that every finding that breaks a link names it. Secrets are never printed: not in
//! messages, not in JSON, not in `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};
use serde_saphyr::{MessageFormatter, Spanned};

use crate::error::exit_codes;
use crate::scenario::Position;

/// Values files hold a release's configuration; anything bigger than this is not one.
pub const MAX_VALUES_BYTES: usize = 1024 * 1024;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    SecretMismatch,
    MissingIncoming,
    MissingOutgoing,
    ChannelOnEntry,
    UnknownPeerName,
    HashedSecret,
    WhitespaceInSecret,
    DuplicateEntry,
}

impl FindingKind {
    /// The kebab-case name printed and used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretMismatch => "secret-mismatch",
            Self::MissingIncoming => "missing-incoming",
            Self::MissingOutgoing => "missing-outgoing",
            Self::ChannelOnEntry => "channel-on-entry",
            Self::UnknownPeerName => "unknown-peer-name",
            Self::HashedSecret => "hashed-secret",
            Self::WhitespaceInSecret => "whitespace-in-secret",
            Self::DuplicateEntry => "duplicate-entry",
        }
    }

    /// Whether a finding of this kind breaks the link it names, whatever else holds: the
    /// link's authentication is rejected or its outgoing row is absent. `hashed-secret` breaks
    /// a link only when the other side differs, which `secret-mismatch` reports;
    /// `unknown-peer-name` breaks the link it meant, which `missing-*` reports;
    /// `duplicate-entry` is ambiguous, not broken.
    pub fn breaks_link(self) -> bool {
        matches!(
            self,
            Self::SecretMismatch
                | Self::MissingIncoming
                | Self::MissingOutgoing
                | Self::ChannelOnEntry
                | Self::WhitespaceInSecret
        )
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Which list of an organization an entry is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// `addAccountOperator.incomingOrganizations`: who may authenticate to this organization.
    Incoming,
    /// `addAccountOperator.outgoingOrganizations`: what this organization presents to peers.
    Outgoing,
}

impl Side {
    fn key(self) -> &'static str {
        match self {
            Self::Incoming => "incomingOrganizations",
            Self::Outgoing => "outgoingOrganizations",
        }
    }
}

/// One problem, located in one file. Organizations are named by their `organizationName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The link the finding is about, when there is one.
    pub from: Option<String>,
    pub to: Option<String>,
    /// The organization whose file holds the entry, for entry findings.
    pub at: Option<String>,
    /// The entry's list, for entry findings.
    pub side: Option<Side>,
    /// `unknown-peer-name`: the name as written.
    pub name: Option<String>,
    /// `unknown-peer-name`: the organization whose `organizationName` the name is, if any.
    pub meant: Option<String>,
    /// One sentence, without any secret.
    pub message: String,
}

impl Finding {
    /// The directed link this finding breaks, if it breaks one (see
    /// [`FindingKind::breaks_link`]).
    pub fn broken_link(&self) -> Option<(&str, &str)> {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) if self.kind.breaks_link() => Some((from, to)),
            _ => None,
        }
    }
}

/// A secret read from a values file: compared, never shown.
#[derive(Clone, PartialEq, Eq)]
struct EntrySecret(String);

impl fmt::Debug for EntrySecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("EntrySecret(<redacted>)")
    }
}

/// One `{name, secret}` entry as read.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The name as written: an MSP id, if the file is right.
    pub name: String,
    /// The line of the entry's `name`.
    pub line: usize,
    /// The line of its `channel` key, if it has one.
    pub channel_line: Option<usize>,
    secret: EntrySecret,
}

/// One organization: one values file.
#[derive(Debug, Clone)]
pub struct OrganizationValues {
    /// The file as the user named it.
    pub file: String,
    /// `organizationName`, else a DNS-safe form of the file name.
    pub name: String,
    /// Whether `name` comes from `organizationName`.
    pub has_organization_name: bool,
    /// `orchestrator.mspID`.
    pub msp_id: String,
    /// The names of `orchestrator.channels`, in file order.
    pub channels: Vec<String>,
    pub incoming: Vec<Entry>,
    pub outgoing: Vec<Entry>,
}

impl OrganizationValues {
    /// The entries of one list.
    pub fn entries(&self, side: Side) -> &[Entry] {
        match side {
            Side::Incoming => &self.incoming,
            Side::Outgoing => &self.outgoing,
        }
    }
}

/// What `lint` found: the organizations read, in argument order, and the findings, in file
/// order then line order.
#[derive(Debug, Clone)]
pub struct LintReport {
    pub organizations: Vec<OrganizationValues>,
    pub findings: Vec<Finding>,
}

impl LintReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// The directed links some finding breaks, as (from, to) organization names.
    pub fn broken_links(&self) -> Vec<(String, String)> {
        let mut links: Vec<(String, String)> = Vec::new();
        for finding in &self.findings {
            if let Some((from, to)) = finding.broken_link()
                && !links.iter().any(|(f, t)| f == from && t == to)
            {
                links.push((from.to_owned(), to.to_owned()));
            }
        }
        links
    }
}

/// Why the input could not be linted (exit 2). Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    #[error("no values file given")]
    NoFiles,
    #[error("{file}:1:1: cannot read the file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{file}:1:1: the file is {size} bytes; a values file is at most {MAX_VALUES_BYTES} bytes"
    )]
    TooLarge { file: String, size: u64 },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
        hint: &'static str,
    },
}

impl LintError {
    fn invalid(
        file: &str,
        position: Position,
        message: impl Into<String>,
        hint: &'static str,
    ) -> Self {
        Self::Invalid {
            file: file.to_owned(),
            line: position.line,
            column: position.column,
            message: message.into(),
            hint,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            Self::NoFiles => "pass the backend values files of the network, one per organization",
            Self::Read { .. } => {
                "check the path; pass backend values files such as backend-ingen-values.yaml"
            }
            Self::TooLarge { .. } => {
                "is this the right file? backend values files are small YAML documents"
            }
            Self::Invalid { hint, .. } => hint,
        }
    }
}

/// The keys lint reads; every other key of a values file is ignored (no
/// `deny_unknown_fields`: values files have many).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawValues {
    organization_name: Option<Spanned<Value>>,
    orchestrator: Option<RawOrchestrator>,
    add_account_operator: Option<RawAccounts>,
}

#[derive(Debug, Deserialize)]
struct RawOrchestrator {
    #[serde(rename = "mspID")]
    msp_id: Option<Spanned<Value>>,
    channels: Option<Spanned<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAccounts {
    incoming_organizations: Option<Vec<Spanned<RawEntry>>>,
    outgoing_organizations: Option<Vec<Spanned<RawEntry>>>,
}

/// An entry's keys. Values are read as any YAML so that a type error can never quote a
/// secret; types are checked here, with messages that name keys, not values. (An entry that
/// is not a map is a parse error, whose quotes are removed by [`without_quotes`].)
#[derive(Debug, Deserialize)]
struct RawEntry {
    name: Option<Spanned<Value>>,
    secret: Option<Spanned<Value>>,
    channel: Option<Spanned<Value>>,
}

fn position_of<T>(spanned: &Spanned<T>) -> Position {
    Position::of(&spanned.referenced)
}

/// Reads the file at `path`, at most [`MAX_VALUES_BYTES`].
fn read_capped(path: &Path, file: &str) -> Result<Vec<u8>, LintError> {
    use std::io::Read;

    let cannot_read = |source| LintError::Read {
        file: file.to_owned(),
        source,
    };
    let handle = std::fs::File::open(path).map_err(cannot_read)?;
    let mut bytes = Vec::new();
    // One byte more than the limit: a huge file (or /dev/zero) is refused unread.
    handle
        .take(MAX_VALUES_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() > MAX_VALUES_BYTES {
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(LintError::TooLarge {
            file: file.to_owned(),
            size,
        });
    }
    Ok(bytes)
}

/// A DNS-1123 label from any text: lowercase, runs of other characters become one `-`, at
/// most `max` characters; `None` when nothing is left.
pub fn dns_label(text: &str, max: usize) -> Option<String> {
    let mut label = String::new();
    for character in text.chars() {
        let character = character.to_ascii_lowercase();
        if character.is_ascii_lowercase() || character.is_ascii_digit() {
            label.push(character);
        } else if !label.is_empty() && !label.ends_with('-') {
            label.push('-');
        }
    }
    label.truncate(max);
    let label = label.trim_end_matches('-').to_owned();
    (!label.is_empty()).then_some(label)
}

/// The organization name a file gives when it has no `organizationName`: its name without
/// the guide's `backend-` prefix and `-values.yaml` suffix, DNS-safe.
pub fn name_from_file(path: &Path) -> String {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file_name
        .strip_suffix(".yaml")
        .or_else(|| file_name.strip_suffix(".yml"))
        .unwrap_or(&file_name);
    let stem = stem.strip_prefix("backend-").unwrap_or(stem);
    let stem = stem.strip_suffix("-values").unwrap_or(stem);
    dns_label(stem, 40).unwrap_or_else(|| "organization".to_owned())
}

fn parse_error_hint(message: &str) -> &'static str {
    let lower = message.to_lowercase();
    if lower.contains("duplicate") {
        "each key may appear once in a mapping"
    } else if lower.contains("budget") || lower.contains("depth") || lower.contains("alias") {
        "values files are plain documents; remove deep nesting and repeated aliases"
    } else {
        "fix the YAML at this position; is this a backend values file?"
    }
}

/// Removes what a parser message quotes from the input: a malformed line may hold a secret.
fn without_quotes(message: &str) -> String {
    let mut result = String::new();
    let mut inside: Option<char> = None;
    for character in message.chars() {
        match inside {
            Some(close) if character == close => {
                result.push('…');
                result.push(character);
                inside = None;
            }
            Some(_) => {}
            None if character == '"' || character == '\'' => {
                result.push(character);
                inside = Some(character);
            }
            None if character.is_control() => result.push(' '),
            None => result.push(character),
        }
    }
    if inside.is_some() {
        result.push('…');
    }
    result
}

fn lowercase_first(message: &str) -> String {
    let mut characters = message.chars();
    match (characters.next(), characters.clone().next()) {
        (Some(first), Some(second)) if second.is_uppercase() => {
            std::iter::once(first).chain(characters).collect()
        }
        (Some(first), _) => first.to_lowercase().chain(characters).collect(),
        (None, _) => String::new(),
    }
}

/// Parses one values file. `file` names it in errors and findings.
pub fn parse_values(
    path: &Path,
    file: &str,
    bytes: &[u8],
) -> Result<OrganizationValues, LintError> {
    let not_text = "a values file is a YAML text file; is this the right file?";
    let text = std::str::from_utf8(bytes).map_err(|error| {
        LintError::invalid(
            file,
            Position::at_byte(bytes, error.valid_up_to()),
            "the file is not UTF-8 text",
            not_text,
        )
    })?;
    if let Some(offset) = text.find('\0') {
        return Err(LintError::invalid(
            file,
            Position::at_byte(bytes, offset),
            "the file contains a NUL byte",
            not_text,
        ));
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 64,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_events: 500_000,
            max_nodes: 200_000,
            max_documents: 1,
        },
        with_snippet: false,
    };
    let raw: Option<RawValues> =
        serde_saphyr::from_str_with_options(text, options).map_err(|error| {
            let message = serde_saphyr::UserMessageFormatter.format_message(&error);
            let position = error
                .location()
                .map(|location| Position::of(&location))
                .unwrap_or(Position::START);
            LintError::invalid(
                file,
                position,
                lowercase_first(&without_quotes(&message)),
                parse_error_hint(&message),
            )
        })?;
    let Some(raw) = raw else {
        return Err(LintError::invalid(
            file,
            Position::START,
            "the file is empty",
            "a backend values file sets at least `orchestrator.mspID`",
        ));
    };
    let msp_hint =
        "set `orchestrator.mspID`: the organization's MSP id, which its peers' entries name";
    let msp = raw
        .orchestrator
        .as_ref()
        .and_then(|o| o.msp_id.as_ref())
        .ok_or_else(|| {
            LintError::invalid(
                file,
                Position::START,
                "`orchestrator.mspID` is missing",
                msp_hint,
            )
        })?;
    let msp_id = match &msp.value {
        Value::String(id) if !id.is_empty() => id.clone(),
        _ => {
            return Err(LintError::invalid(
                file,
                position_of(msp),
                "`orchestrator.mspID` is not a non-empty string",
                msp_hint,
            ));
        }
    };
    if msp_id.contains(':') || msp_id.chars().any(char::is_whitespace) {
        return Err(LintError::invalid(
            file,
            position_of(msp),
            "`orchestrator.mspID` contains `:` or whitespace, which Basic auth cannot carry",
            "use an MSP id of letters, digits, `.` and `-`, e.g. IngenMSP",
        ));
    }
    let (name, has_organization_name) = match &raw.organization_name {
        Some(spanned) => match &spanned.value {
            Value::String(name) if !name.is_empty() => (name.clone(), true),
            Value::Null => (name_from_file(path), false),
            _ => {
                return Err(LintError::invalid(
                    file,
                    position_of(spanned),
                    "`organizationName` is not a non-empty string",
                    "set `organizationName` to the organization's name, e.g. ingen",
                ));
            }
        },
        None => (name_from_file(path), false),
    };
    let channels = match raw.orchestrator.as_ref().and_then(|o| o.channels.as_ref()) {
        None => Vec::new(),
        Some(spanned) => channel_names(file, spanned)?,
    };
    let accounts = raw.add_account_operator.as_ref();
    let incoming = entries(
        file,
        Side::Incoming,
        accounts.and_then(|a| a.incoming_organizations.as_ref()),
    )?;
    let outgoing = entries(
        file,
        Side::Outgoing,
        accounts.and_then(|a| a.outgoing_organizations.as_ref()),
    )?;
    Ok(OrganizationValues {
        file: file.to_owned(),
        name,
        has_organization_name,
        msp_id,
        channels,
        incoming,
        outgoing,
    })
}

/// `orchestrator.channels`: a list of single-key maps, `- our-channel: {restricted: false}`.
fn channel_names(file: &str, spanned: &Spanned<Value>) -> Result<Vec<String>, LintError> {
    let hint = "write channels as the chart does: `channels: [{our-channel: {restricted: false}}]`";
    let invalid = || {
        LintError::invalid(
            file,
            position_of(spanned),
            "`orchestrator.channels` is not a list of single-key maps",
            hint,
        )
    };
    match &spanned.value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(map) if map.len() == 1 => {
                    map.keys().next().cloned().ok_or_else(invalid)
                }
                _ => Err(invalid()),
            })
            .collect(),
        _ => Err(invalid()),
    }
}

/// The entries of one list, with their types checked.
fn entries(
    file: &str,
    side: Side,
    list: Option<&Vec<Spanned<RawEntry>>>,
) -> Result<Vec<Entry>, LintError> {
    let key = side.key();
    let mut result = Vec::new();
    for raw in list.into_iter().flatten() {
        let entry_hint = "an entry is `{name: PeerMSP, secret: ...}`: the peer's MSP id and the shared plaintext secret";
        let name = match &raw.value.name {
            Some(Spanned {
                value: Value::String(name),
                ..
            }) if !name.is_empty() => name.clone(),
            Some(spanned) => {
                return Err(LintError::invalid(
                    file,
                    position_of(spanned),
                    format!(
                        "an entry of `addAccountOperator.{key}` has a `name` that is not a non-empty string"
                    ),
                    entry_hint,
                ));
            }
            None => {
                return Err(LintError::invalid(
                    file,
                    position_of(raw),
                    format!("an entry of `addAccountOperator.{key}` has no `name`"),
                    entry_hint,
                ));
            }
        };
        let secret = match &raw.value.secret {
            Some(Spanned {
                value: Value::String(secret),
                ..
            }) if !secret.is_empty() => secret.clone(),
            Some(spanned) => {
                return Err(LintError::invalid(
                    file,
                    position_of(spanned),
                    format!(
                        "the entry `{name}` of `addAccountOperator.{key}` has a `secret` that is not a non-empty string"
                    ),
                    "quote the secret; it is plaintext, the same on both sides of the link",
                ));
            }
            None => {
                return Err(LintError::invalid(
                    file,
                    position_of(raw),
                    format!("the entry `{name}` of `addAccountOperator.{key}` has no `secret`"),
                    entry_hint,
                ));
            }
        };
        let line = raw
            .value
            .name
            .as_ref()
            .map_or_else(|| position_of(raw).line, |n| position_of(n).line);
        result.push(Entry {
            name,
            line,
            channel_line: raw.value.channel.as_ref().map(|c| position_of(c).line),
            secret: EntrySecret(secret),
        });
    }
    Ok(result)
}

/// Whether `secret` is a Django password hash (`<algorithm>$...`), what DOC #445 wrongly asks
/// for: the backend hashes the value it is given, so a hash only matches itself.
fn is_password_hash(secret: &str) -> bool {
    const ALGORITHMS: [&str; 7] = [
        "pbkdf2_sha256",
        "pbkdf2_sha1",
        "pbkdf2_sha2",
        "argon2",
        "bcrypt_sha256",
        "bcrypt",
        "scrypt",
    ];
    secret
        .split_once('$')
        .is_some_and(|(algorithm, rest)| ALGORITHMS.contains(&algorithm) && rest.contains('$'))
}

/// Lints a set of values files, one per organization.
pub fn lint(files: &[PathBuf]) -> Result<LintReport, LintError> {
    if files.is_empty() {
        return Err(LintError::NoFiles);
    }
    let mut organizations = Vec::with_capacity(files.len());
    for path in files {
        let file = path.display().to_string();
        let bytes = read_capped(path, &file)?;
        organizations.push(parse_values(path, &file, &bytes)?);
    }
    let mut by_msp: HashMap<&str, usize> = HashMap::new();
    for (index, organization) in organizations.iter().enumerate() {
        if let Some(&other) = by_msp.get(organization.msp_id.as_str()) {
            return Err(LintError::Invalid {
                file: organization.file.clone(),
                line: 1,
                column: 1,
                message: format!(
                    "`orchestrator.mspID` `{}` is also the MSP id of {}",
                    organization.msp_id, organizations[other].file
                ),
                hint: "pass each organization's values file once; MSP ids are unique in a network",
            });
        }
        by_msp.insert(organization.msp_id.as_str(), index);
        if let Some(other) = organizations[..index]
            .iter()
            .find(|other| other.name == organization.name)
        {
            return Err(LintError::Invalid {
                file: organization.file.clone(),
                line: 1,
                column: 1,
                message: format!(
                    "the organization name `{}` is also the name of {}",
                    organization.name, other.file
                ),
                hint: "set a distinct `organizationName` in each file; findings name organizations by it",
            });
        }
    }
    let findings = analyze(&organizations, &by_msp);
    Ok(LintReport {
        organizations,
        findings,
    })
}

/// The first entry of `organization`'s `side` list naming `msp_id`.
fn find_entry<'a>(
    organization: &'a OrganizationValues,
    side: Side,
    msp_id: &str,
) -> Option<&'a Entry> {
    organization.entries(side).iter().find(|e| e.name == msp_id)
}

fn analyze(organizations: &[OrganizationValues], by_msp: &HashMap<&str, usize>) -> Vec<Finding> {
    // (file index, line, kind) orders the findings.
    let mut findings: Vec<(usize, Finding)> = Vec::new();
    let by_name: HashMap<&str, usize> = organizations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.name.as_str(), i))
        .collect();
    for (index, organization) in organizations.iter().enumerate() {
        for side in [Side::Incoming, Side::Outgoing] {
            let list = side.key();
            for (position, entry) in organization.entries(side).iter().enumerate() {
                let peer = by_msp
                    .get(entry.name.as_str())
                    .map(|&p| organizations[p].name.clone());
                // The link the entry serves: an incoming entry of B naming msp(A) serves A→B;
                // an outgoing entry of A naming msp(B) serves A→B.
                let (from, to) = match side {
                    Side::Incoming => (peer.clone(), Some(organization.name.clone())),
                    Side::Outgoing => (Some(organization.name.clone()), peer.clone()),
                };
                let (from, to) = if peer.is_some() {
                    (from, to)
                } else {
                    (None, None)
                };
                let base = Finding {
                    kind: FindingKind::DuplicateEntry,
                    file: organization.file.clone(),
                    line: entry.line,
                    from,
                    to,
                    at: Some(organization.name.clone()),
                    side: Some(side),
                    name: None,
                    meant: None,
                    message: String::new(),
                };
                let at = &organization.name;
                let describe = || match &peer {
                    Some(peer) => format!("`{at}`'s {list} entry for `{peer}` ({})", entry.name),
                    None => format!("`{at}`'s {list} entry `{}`", entry.name),
                };
                if peer.is_none() {
                    let meant = by_name.get(entry.name.as_str()).map(|&p| &organizations[p]);
                    let message = match meant {
                        Some(meant) => format!(
                            "`{at}`'s {list} entry is named `{}`, the organizationName of `{}`; entries are named by MSP id: `{}`",
                            entry.name, meant.name, meant.msp_id
                        ),
                        None => format!(
                            "`{at}`'s {list} entry is named `{}`, which is the MSP id of none of the given organizations",
                            entry.name
                        ),
                    };
                    findings.push((
                        index,
                        Finding {
                            kind: FindingKind::UnknownPeerName,
                            name: Some(entry.name.clone()),
                            meant: meant.map(|m| m.name.clone()),
                            message,
                            ..base.clone()
                        },
                    ));
                }
                if organization.entries(side)[..position]
                    .iter()
                    .any(|earlier| earlier.name == entry.name)
                {
                    findings.push((
                        index,
                        Finding {
                            kind: FindingKind::DuplicateEntry,
                            message: format!(
                                "{} is listed again; the backend keeps one of them and lint compares the first",
                                describe()
                            ),
                            ..base.clone()
                        },
                    ));
                }
                if let Some(channel_line) = entry.channel_line {
                    findings.push((
                        index,
                        Finding {
                            kind: FindingKind::ChannelOnEntry,
                            line: channel_line,
                            message: format!(
                                "{} has a `channel` key: the chart renders `name secret channel` and the backend takes the channel as the secret; remove it",
                                describe()
                            ),
                            ..base.clone()
                        },
                    ));
                }
                if is_password_hash(&entry.secret.0) {
                    findings.push((
                        index,
                        Finding {
                            kind: FindingKind::HashedSecret,
                            message: format!(
                                "{} holds a password hash; the backend hashes what it is given, so both sides need the same plaintext",
                                describe()
                            ),
                            ..base.clone()
                        },
                    ));
                }
                if entry.secret.0.chars().any(char::is_whitespace) {
                    findings.push((
                        index,
                        Finding {
                            kind: FindingKind::WhitespaceInSecret,
                            message: format!(
                                "{} has whitespace in its secret; the backend splits the line on the last space, so name and secret are wrong",
                                describe()
                            ),
                            ..base.clone()
                        },
                    ));
                }
            }
        }
    }
    for (a_index, a) in organizations.iter().enumerate() {
        for (b_index, b) in organizations.iter().enumerate() {
            let outgoing = find_entry(a, Side::Outgoing, &b.msp_id);
            let incoming = find_entry(b, Side::Incoming, &a.msp_id);
            let link = format!("`{}`→`{}`", a.name, b.name);
            let finding = |kind, file: &str, line, message| Finding {
                kind,
                file: file.to_owned(),
                line,
                from: Some(a.name.clone()),
                to: Some(b.name.clone()),
                at: None,
                side: None,
                name: None,
                meant: None,
                message,
            };
            match (outgoing, incoming) {
                (Some(outgoing), Some(incoming)) if outgoing.secret != incoming.secret => {
                    findings.push((
                        b_index,
                        finding(
                            FindingKind::SecretMismatch,
                            &b.file,
                            incoming.line,
                            format!(
                                "{link}: `{}`'s incoming secret for {} differs from `{}`'s outgoing secret for {} ({}:{}); both must hold the same plaintext",
                                b.name, a.msp_id, a.name, b.msp_id, a.file, outgoing.line
                            ),
                        ),
                    ));
                }
                (Some(outgoing), None) => findings.push((
                    a_index,
                    finding(
                        FindingKind::MissingIncoming,
                        &a.file,
                        outgoing.line,
                        format!(
                            "{link}: `{}` presents a secret to {}, but {} has no incoming entry named {}; add it with the same secret",
                            a.name, b.msp_id, b.file, a.msp_id
                        ),
                    ),
                )),
                (None, Some(incoming)) => findings.push((
                    b_index,
                    finding(
                        FindingKind::MissingOutgoing,
                        &b.file,
                        incoming.line,
                        format!(
                            "{link}: `{}` accepts {}, but {} has no outgoing entry named {}; add it with the same secret",
                            b.name, a.msp_id, a.file, b.msp_id
                        ),
                    ),
                )),
                _ => {}
            }
        }
    }
    findings.sort_by_key(|(file, finding)| (*file, finding.line, finding.kind));
    findings.into_iter().map(|(_, finding)| finding).collect()
}

/// Findings as text, one per line as `file:line: kind: message`, then a summary.
pub fn render_human(report: &LintReport) -> String {
    let mut text = String::new();
    for finding in &report.findings {
        text.push_str(&format!(
            "{}:{}: {}: {}\n",
            finding.file, finding.line, finding.kind, finding.message
        ));
    }
    let files = report.organizations.len();
    let count = report.findings.len();
    if count == 0 {
        text.push_str(&format!(
            "ok: {files} values file{}, no findings\n",
            plural(files)
        ));
    } else {
        text.push_str(&format!(
            "{count} finding{} in {files} values file{}\n",
            plural(count),
            plural(files)
        ));
    }
    text
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

/// Findings as JSON: `{"findings": [{kind, file, line, from, to, at, name, message}]}`, every
/// key present (`null` when it does not apply), organizations by `organizationName`; `name` is
/// the entry name an `unknown-peer-name` finding is about.
pub fn render_json(report: &LintReport) -> String {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|finding| {
            json!({
                "kind": finding.kind.as_str(),
                "file": finding.file,
                "line": finding.line,
                "from": finding.from,
                "to": finding.to,
                "at": finding.at,
                "name": finding.name,
                "message": finding.message,
            })
        })
        .collect();
    let document = json!({ "findings": findings });
    // A `Value` built from strings and numbers always serializes.
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// Prints an input error and its hint to stderr.
pub(crate) fn print_error(error: &LintError) {
    eprintln!("error: {error}");
    eprintln!("  hint: {}", error.hint());
}

/// `orgmesh lint VALUES_FILE... [--json]`: prints the findings to stdout; exit 0 when clean,
/// 1 with findings, 2 when some input cannot be read.
pub fn lint_command(files: &[PathBuf], json: bool) -> i32 {
    match lint(files) {
        Ok(report) => {
            if json {
                print!("{}", render_json(&report));
            } else {
                print!("{}", render_human(&report));
            }
            if report.is_clean() {
                exit_codes::OK
            } else {
                exit_codes::EXPECTATION_NOT_MET
            }
        }
        Err(error) => {
            print_error(&error);
            exit_codes::USAGE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_are_lowercase_and_dashed() {
        let cases = [
            ("ingen", Some("ingen")),
            ("Umbrella_Corp", Some("umbrella-corp")),
            ("--Tyrell  Corp--", Some("tyrell-corp")),
            ("日本", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(dns_label(text, 40).as_deref(), expected, "{text}");
        }
        assert_eq!(dns_label("abcdef-ghi", 7).as_deref(), Some("abcdef"));
    }

    #[test]
    fn file_names_lose_the_guides_prefix_and_suffix() {
        let cases = [
            ("dir/backend-ingen-values.yaml", "ingen"),
            ("Biotechnica.yml", "biotechnica"),
            ("backend-.yaml", "organization"),
        ];
        for (path, expected) in cases {
            assert_eq!(name_from_file(Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    fn django_hashes_are_recognized() {
        let cases = [
            ("pbkdf2_sha256$600000$salt$hash=", true),
            ("argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA", true),
            ("pbkdf2_sha256-not-a-hash", false),
            ("organizationSecret1w2", false),
            ("price$10", false),
        ];
        for (secret, expected) in cases {
            assert_eq!(is_password_hash(secret), expected, "{secret}");
        }
    }

    #[test]
    fn parser_messages_lose_what_they_quote() {
        assert_eq!(
            without_quotes("invalid type: string \"Peer s3cret\", expected a map"),
            "invalid type: string \"…\", expected a map"
        );
        assert_eq!(without_quotes("unclosed 'abc"), "unclosed '…");
        assert_eq!(
            without_quotes("duplicate key `name`"),
            "duplicate key `name`"
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let entry = Entry {
            name: "IngenMSP".into(),
            line: 3,
            channel_line: None,
            secret: EntrySecret("visible-secret-value".into()),
        };
        let debug = format!("{entry:?}");
        assert!(
            debug.contains("IngenMSP") && !debug.contains("visible-secret-value"),
            "{debug}"
        );
    }
}
