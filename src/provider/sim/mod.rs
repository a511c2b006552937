//! The embedded simulator (in progress).
