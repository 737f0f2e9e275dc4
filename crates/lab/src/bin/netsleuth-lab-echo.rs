//! `netsleuth-lab-echo`: the lab's echo service and client (see `netsleuth_lab::echo`).
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    std::process::exit(netsleuth_lab::echo::main_with_args(&args));
}
