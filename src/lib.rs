//! orgmesh proves that a network of Substra organizations is linked.
//!
//! The pipeline: a scenario file is parsed and validated ([`scenario`]), turned into a
//! [`topology`] of organizations, clusters, channels and directed links, then into a [`plan`]
//! of ordered steps. [`secrets`] gives one secret per directed link and [`values`] renders one
//! complete Helm values document per organization. Everything up to here is pure. A
//! [`provider`] then brings clusters up and installs releases, the [`verify`] module checks
//! every directed link for reachability and authentication, and [`report`] turns the
//! observations into a terminal matrix, `report.json` and `junit.xml`. [`run`] drives the
//! asynchronous part and tears everything down in reverse order.

pub mod charts;
pub mod cli;
pub mod deploy;
pub mod docker;
pub mod error;
pub mod image;
pub mod import;
pub mod lint;
pub mod plan;
pub mod process;
pub mod provider;
pub mod report;
pub mod run;
pub mod scenario;
pub mod secrets;
pub mod topology;
pub mod values;
pub mod verify;
