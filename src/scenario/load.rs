//! Reading a scenario file: bytes → text → [`RawScenario`], with every failure turned into a
//! diagnostic that names the file, line and column.
//!
//! Hostile input must never panic or exhaust memory: the file size is capped before parsing,
//! non-UTF-8 bytes are located, and serde-saphyr's budget bounds nesting depth, aliases and
//! events (alias bombs, deep nesting).

use std::path::Path;
use std::sync::Arc;

use serde_saphyr::MessageFormatter;

use super::diagnostic::{Position, ScenarioDiagnostic, ScenarioErrors};
use super::model::RawScenario;

/// Scenario files are small; anything bigger than this is not a scenario.
pub const MAX_SCENARIO_BYTES: usize = 1024 * 1024;

/// The scenario text and its parsed form.
pub struct Loaded {
    pub source: Arc<str>,
    pub raw: RawScenario,
}

/// Reads and parses the scenario at `path`. `display_name` is how errors name the file.
pub fn load_file(path: &Path) -> Result<Loaded, ScenarioErrors> {
    use std::io::Read;

    let file = path.display().to_string();
    let cannot_read = |error: std::io::Error| {
        single(
            &file,
            ScenarioDiagnostic::new(&file, Position::START, format!("cannot read the file: {error}"))
                .with_hint("check the path; `orgmesh validate` takes scenario files such as scenarios/guide.yaml"),
        )
    };
    // Read at most one byte more than the limit: a huge file (or /dev/zero) is refused
    // without being loaded.
    let handle = std::fs::File::open(path).map_err(cannot_read)?;
    let mut bytes = Vec::new();
    handle
        .take(MAX_SCENARIO_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot_read)?;
    if bytes.len() > MAX_SCENARIO_BYTES {
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(too_large(&file, size));
    }
    parse_bytes(&file, &bytes)
}

fn too_large(file: &str, size: u64) -> ScenarioErrors {
    single(
        file,
        ScenarioDiagnostic::new(
            file,
            Position::START,
            format!("the file is {size} bytes; a scenario is at most {MAX_SCENARIO_BYTES} bytes"),
        )
        .with_hint("a scenario describes organizations, channels and links; large data does not belong in it"),
    )
}

fn single(file: &str, diagnostic: ScenarioDiagnostic) -> ScenarioErrors {
    ScenarioErrors {
        file: file.to_owned(),
        diagnostics: vec![diagnostic],
    }
}

/// Parses scenario bytes; `file` names them in errors.
pub fn parse_bytes(file: &str, bytes: &[u8]) -> Result<Loaded, ScenarioErrors> {
    if bytes.len() > MAX_SCENARIO_BYTES {
        return Err(too_large(file, bytes.len() as u64));
    }
    let text = std::str::from_utf8(bytes).map_err(|error| {
        single(
            file,
            ScenarioDiagnostic::new(
                file,
                Position::at_byte(bytes, error.valid_up_to()),
                "the file is not UTF-8 text",
            )
            .with_hint("a scenario is a YAML text file; is this the right file?"),
        )
    })?;
    if let Some(offset) = text.find('\0') {
        return Err(single(
            file,
            ScenarioDiagnostic::new(
                file,
                Position::at_byte(bytes, offset),
                "the file contains a NUL byte",
            )
            .with_hint("a scenario is a YAML text file; is this the right file?"),
        ));
    }
    let source: Arc<str> = Arc::from(text);
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(single(
            file,
            ScenarioDiagnostic::new(file, Position::START, "the scenario is empty")
                .with_hint("a scenario needs at least `name`, `channels` and `organizations`; `orgmesh schema` prints the format"),
        ));
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 32,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_events: 200_000,
            max_nodes: 100_000,
            max_documents: 1,
        },
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<RawScenario>(text, options) {
        Ok(raw) => Ok(Loaded { source, raw }),
        Err(error) => {
            let message = serde_saphyr::UserMessageFormatter.format_message(&error);
            let message = escape_controls(&message);
            let position = missing_top_level_key(&message, text).unwrap_or_else(|| {
                error
                    .location()
                    .map(|location| Position::of(&location))
                    .unwrap_or(Position::START)
            });
            let diagnostic = ScenarioDiagnostic::new(file, position, lowercase_first(&message))
                .with_hint(parse_hint(&message))
                .with_source(&source);
            Err(single(file, diagnostic))
        }
    }
}

/// Lowercases the first letter of a message (house style), but not of an acronym.
fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match (chars.next(), chars.clone().next()) {
        (Some(first), Some(second)) if second.is_uppercase() => {
            std::iter::once(first).chain(chars).collect()
        }
        (Some(first), _) => first.to_lowercase().chain(chars).collect(),
        (None, _) => String::new(),
    }
}

/// Escapes control characters only: the message may quote the input, and a terminal must
/// not interpret what it quotes; quotes themselves stay readable.
fn escape_controls(message: &str) -> String {
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().collect()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The parser places a missing key at the mapping's last key. For a required top-level key
/// that is absent, the mapping that lacks it is the document: point at its first line.
fn missing_top_level_key(message: &str, text: &str) -> Option<Position> {
    let field = message.strip_prefix("missing field `")?.split('`').next()?;
    if !["name", "channels", "organizations"].contains(&field) {
        return None;
    }
    let mut offset = 0;
    let mut first_content = None;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let is_content = !line.trim().is_empty() && !line.trim_start().starts_with('#');
        if is_content && first_content.is_none() {
            first_content = Some((index + 1, offset));
        }
        if line.starts_with(&format!("{field}:")) {
            return None;
        }
        offset += line.len();
    }
    let (line, offset) = first_content?;
    Some(Position {
        line,
        column: 1,
        span: Some((offset, 1)),
    })
}

/// A hint for a parse error, from the kind of problem the message describes.
fn parse_hint(message: &str) -> String {
    let lower = message.to_lowercase();
    if lower.contains("duplicate") {
        "each key may appear once; a duplicated organization or cluster would otherwise replace the first".into()
    } else if lower.contains("unknown field") || lower.contains("unknown variant") {
        "remove or rename the key; `orgmesh schema` lists every valid key and value".into()
    } else if lower.contains("missing field") {
        "add the missing key; `orgmesh schema` lists the required keys".into()
    } else if lower.contains("budget")
        || lower.contains("depth")
        || lower.contains("alias")
        || lower.contains("limit")
    {
        "scenarios are small, flat documents; remove deep nesting and repeated aliases".into()
    } else {
        "fix the YAML at this position; `orgmesh schema` prints the format".into()
    }
}
