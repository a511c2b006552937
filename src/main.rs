//! The `orgmesh` command: parse arguments, run the command, exit with its code.

use clap::Parser;

fn main() {
    let cli = orgmesh::cli::Cli::parse();
    std::process::exit(orgmesh::cli::run(cli));
}
