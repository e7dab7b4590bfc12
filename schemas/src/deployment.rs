//! The `Deployment` kind.
