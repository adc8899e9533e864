//! `cargo run --example plan -- snapshot.json`: the native planner on a file
//! (prints the plan JSON); used for profiling against the wasm build.
use std::io::Read;

fn main() {
    let mut text = String::new();
    match std::env::args().nth(1) {
        Some(path) => text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read: {e}")),
        None => {
            std::io::stdin()
                .read_to_string(&mut text)
                .unwrap_or_else(|e| panic!("stdin: {e}"));
        }
    }
    match proxbox_planner::plan_json(&text) {
        Ok(plan) => println!("{plan}"),
        Err(error) => {
            eprintln!("error [{}]: {error}", error.code);
            std::process::exit(1);
        }
    }
}
