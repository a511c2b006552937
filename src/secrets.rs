//! secrets (in progress).
