//! Fixture builders for tests (`testsuite` feature).
