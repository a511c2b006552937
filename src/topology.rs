//! topology (in progress).
