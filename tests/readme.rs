//! The README lists exactly the codes the planner emits: its reason and
//! warning lists are checked against the enums.

use proxbox_planner::plan::{Reason, WarningCode};
use serde_json::Value;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The backticked words of the README bullet that starts with `marker`.
fn listed(marker: &str) -> Vec<String> {
    let text = readme();
    let start = text.find(marker).unwrap_or_else(|| panic!("README has no {marker}"));
    let rest = &text[start..];
    let end = rest[2..].find("\n- ").map_or(rest.len(), |at| at + 2);
    let bullet = &rest[..end];
    let after = bullet.split_once(':').map_or(bullet, |(_, list)| list);
    let mut codes: Vec<String> = after
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .map(str::to_owned)
        .collect();
    codes.sort();
    codes
}

fn names<T: serde::Serialize>(all: &[T]) -> Vec<String> {
    let mut names: Vec<String> = all
        .iter()
        .map(|c| match serde_json::to_value(c).unwrap() {
            Value::String(s) => s,
            other => panic!("{other}"),
        })
        .collect();
    names.sort();
    names
}

#[test]
fn the_readme_lists_every_reason_and_no_other() {
    assert_eq!(listed("- **Reasons**"), names(&Reason::ALL));
}

#[test]
fn the_readme_lists_every_warning_code_and_no_other() {
    let listed: Vec<String> = listed("- **Warnings**").into_iter().filter(|w| w != "stage").collect();
    assert_eq!(listed, names(&WarningCode::ALL));
}
