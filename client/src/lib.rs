//! Typed HTTP client for the Caravan API.
