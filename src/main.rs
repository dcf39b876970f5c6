//! The `aerie` command: parse the command line, run, exit with a code from
//! `aerie::error` (0 ok, 1 runtime failure, 2 usage or config, 3 workers
//! cannot boot).

fn main() {
    std::process::exit(aerie::main_with_args(std::env::args().skip(1)));
}
