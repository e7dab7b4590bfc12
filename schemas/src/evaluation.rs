//! The `Evaluation` kind.
