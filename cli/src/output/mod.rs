//! Rendering objects for the terminal: tables, describe views, YAML/JSON and names.

pub mod age;
pub mod describe;
pub mod object;
pub mod table;
