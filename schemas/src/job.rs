//! The `Job` kind.
