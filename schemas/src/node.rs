//! The `Node` kind.
