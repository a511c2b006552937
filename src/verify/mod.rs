//! Verification of directed links, the same code for every provider (DESIGN §4).
//!
//! A provider only has to run a command in an organization's server; everything else — the
//! table parser, the credential probe, classification against expectations and polling — is
//! here.

pub mod probe;
pub mod table;
