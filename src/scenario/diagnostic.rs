//! Diagnostics for scenario files: every problem names the file, line and column, says what
//! is wrong and, where it helps, what would be valid.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// A position in a scenario file (1-based line and column) and its byte span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
    /// Byte offset and length in the source, when known.
    pub span: Option<(usize, usize)>,
}

impl Position {
    /// The start of the file.
    pub const START: Self = Self {
        line: 1,
        column: 1,
        span: None,
    };

    /// The position of a parsed value.
    pub fn of(location: &serde_saphyr::Location) -> Self {
        let span = location.span();
        let byte_span = match (span.byte_offset(), span.byte_len()) {
            (Some(offset), Some(length)) => Some((offset as usize, length as usize)),
            _ => None,
        };
        Self {
            line: (location.line() as usize).max(1),
            column: (location.column() as usize).max(1),
            span: byte_span,
        }
    }

    /// The position of byte `offset` in `text`.
    pub fn at_byte(text: &[u8], offset: usize) -> Self {
        let before = &text[..offset.min(text.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Self {
            line,
            column: offset - line_start + 1,
            span: Some((offset, 1)),
        }
    }
}

/// One problem in one scenario file.
#[derive(Debug, Clone, thiserror::Error, Diagnostic)]
#[error("{file}:{line}:{column}: {message}", line = self.position.line, column = self.position.column)]
#[diagnostic(code(orgmesh::scenario))]
pub struct ScenarioDiagnostic {
    /// The file as the user named it.
    pub file: String,
    pub position: Position,
    /// What is wrong, lowercase, one sentence.
    pub message: String,
    /// What would be valid.
    #[help]
    pub hint: Option<String>,
    #[source_code]
    source_code: Option<NamedSource<Arc<str>>>,
    #[label("{}", label.as_deref().unwrap_or("here"))]
    label_span: Option<SourceSpan>,
    label: Option<String>,
}

impl ScenarioDiagnostic {
    pub fn new(file: &str, position: Position, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            position,
            message: message.into(),
            hint: None,
            source_code: None,
            label_span: None,
            label: None,
        }
    }

    /// Adds what would be valid.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Attaches the source text so that the graphical report can show the offending line.
    pub fn with_source(mut self, source: &Arc<str>) -> Self {
        if let Some((offset, length)) = self.position.span {
            let length = length.max(1);
            if offset + length <= source.len() {
                self.source_code = Some(NamedSource::new(&self.file, Arc::clone(source)));
                self.label_span = Some(SourceSpan::from((offset, length)));
            }
        }
        self
    }
}

/// Every problem found in one scenario file, in file order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ScenarioErrors {
    pub file: String,
    pub diagnostics: Vec<ScenarioDiagnostic>,
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.diagnostics.len();
        write!(
            f,
            "{}: {} problem{}",
            self.file,
            count,
            if count == 1 { "" } else { "s" }
        )
    }
}

impl Diagnostic for ScenarioErrors {
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(
            self.diagnostics.iter().map(|d| d as &dyn Diagnostic),
        ))
    }
}

impl ScenarioErrors {
    /// Plain text, one problem per line with its hint, for terminals without graphics.
    pub fn to_plain_text(&self) -> String {
        let mut text = String::new();
        for diagnostic in &self.diagnostics {
            text.push_str(&format!("error: {diagnostic}\n"));
            if let Some(hint) = &diagnostic.hint {
                text.push_str(&format!("  hint: {hint}\n"));
            }
        }
        text
    }
}
