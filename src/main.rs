//! `lector`: the command line and the local server of Lector.

fn main() -> std::process::ExitCode {
    lector::cli::main()
}
