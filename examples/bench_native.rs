//! `bench_native FILE RUNS`: the native planner's times on one input, as one
//! JSON line (medians in ms): read as a Value, plan a Value, plan_json text
//! to text. The wasm side measures the same things in host/bench.
use std::time::Instant;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut samples = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        last = Some(f());
        samples.push(start.elapsed().as_secs_f64() * 1e3);
    }
    (median(samples), last.unwrap_or_else(|| panic!("no runs")))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let file = args.next().unwrap_or_else(|| panic!("usage: bench_native FILE RUNS"));
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (parse_ms, value) = time(runs, || serde_json::from_str::<serde_json::Value>(&text).unwrap());
    let (plan_ms, _) = time(runs, || proxbox_planner::plan(&value).unwrap());
    let (plan_json_ms, output) = time(runs, || proxbox_planner::plan_json(&text).unwrap());
    println!(
        "{}",
        serde_json::json!({"parse_ms": parse_ms, "plan_ms": plan_ms, "plan_json_ms": plan_json_ms, "plan_bytes": output.len()})
    );
}
