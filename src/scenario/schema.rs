//! The JSON Schema of the scenario format, derived from the serde model so that the two
//! cannot drift apart. `orgmesh schema` prints it for editor completion.

use super::model::RawScenario;

/// The schema as pretty-printed JSON.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RawScenario);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}
