//! The `orgmesh` command.

fn main() {}
