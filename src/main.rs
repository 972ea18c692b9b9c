//! The `gracetrace` binary: everything it does is in the library's top layer, `cli`.

fn main() -> std::process::ExitCode {
    gracetrace::cli::main()
}
