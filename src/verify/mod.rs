//! Verification of directed links, the same code for every provider (DESIGN §4).
//!
//! A provider only has to run a command in an organization's server; everything else — the
//! table parser, the credential probe, classification against expectations and polling — is
//! here.

pub mod observe;
pub mod poll;
pub mod probe;
pub mod rotation;
pub mod table;

pub use poll::{LastOutputs, Pacer, Source, Target, VerifyOptions, verify_source};
pub use rotation::{RevokedTarget, RotationTarget, check_revoked, check_rotation, rotation_text};
