fn main() {
    std::process::exit(posbridge::cli::main_with_args(std::env::args_os()));
}
