//! The `Namespace` kind.
