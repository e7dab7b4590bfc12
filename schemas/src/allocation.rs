//! The `Allocation` kind.
