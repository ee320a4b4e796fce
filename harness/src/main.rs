fn main() -> std::process::ExitCode {
    vmsbench::main_entry()
}
