fn main() -> std::process::ExitCode {
    sslbench::cli::main()
}
