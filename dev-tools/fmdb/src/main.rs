//! The `fmdb` binary; everything is in the library.

fn main() {
    std::process::exit(fmdb::main_with_args(std::env::args_os().collect()));
}
