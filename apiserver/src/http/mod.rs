//! The HTTP API: Kubernetes-style REST and watch over the store.
