//! The scenario file format (DESIGN §2): its serde model, loading with file:line:column
//! diagnostics, validation into a [`Scenario`], and the JSON Schema.

pub mod diagnostic;
pub mod load;
pub mod model;
pub mod schema;
pub mod validate;

pub use diagnostic::{Position, ScenarioDiagnostic, ScenarioErrors};
pub use model::{AuthOutcome, LinkMode, ProviderName, StepName};
pub use validate::{
    Channel, Chart, ChartSource, Charts, Cluster, Expectation, Fault, Links, Located, Organization,
    Reach, Scenario, ScenarioStep,
};

use std::path::Path;

/// Reads, parses and validates the scenario file at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
    let loaded = load::load_file(path)?;
    validate::validate(path, &loaded.source, loaded.raw)
}

/// Parses and validates scenario text; `path` names it in diagnostics and anchors relative
/// chart paths.
pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioErrors> {
    let loaded = load::parse_bytes(&path.display().to_string(), text.as_bytes())?;
    validate::validate(path, &loaded.source, loaded.raw)
}
