//! Reports: what a run shows while it runs and what it leaves behind.
//!
//! The runner emits [`Event`]s while it works; [`Progress`] shows them as bars on a terminal,
//! plain lines in CI, or nothing but warnings, and never drives execution. When the run ends
//! the runner builds one [`Report`] tree (one [`CheckResult`] per check and directed link), and
//! every output is a pure function of it: [`render_summary`] for the terminal matrix,
//! [`to_json`] for `report.json` and [`to_junit_xml`] for `junit.xml`. Library users assert
//! on it with [`Report::assert_passed`].
//!
//! A failed check is data in the report, never a [`ReportError`]; that error is only for
//! report files that cannot be written.

mod error;
pub mod events;
pub mod json;
pub mod junit;
pub mod model;
pub mod progress;
pub mod terminal;

#[cfg(test)]
mod fixtures;

pub use error::ReportError;
pub use events::{Action, Event, Outcome};
pub use json::{from_json, to_json, write_json};
pub use junit::{to_junit_xml, write_junit};
pub use model::{
    Charts, CheckKind, CheckResult, HEALTHY_AUTH, HEALTHY_REACH, HEALTHY_ROTATION, Phase, Report,
    rfc3339,
};
pub use progress::{Progress, ProgressMode};
pub use terminal::{Style, format_duration, render_failures, render_summary};
