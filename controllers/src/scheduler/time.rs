//! RFC 3339 timestamps as Unix seconds (the schemas' own, shared with admission).

pub use caravan_schemas::time::{format_rfc3339, parse_rfc3339};
