//! `nccat` as an example (`cargo run --example nccat`): the same code as the installed
//! binary, `src/bin/nccat.rs`.

#[path = "../src/bin/nccat.rs"]
mod nccat;

fn main() -> std::process::ExitCode {
    nccat::main()
}
