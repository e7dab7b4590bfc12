//! A careless or hostile client against a real server: every request is refused with a
//! precise `Status`, and no request breaks the server, reaches the host or exhausts memory.

mod admission;
mod members;
