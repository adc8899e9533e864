//! Every plan a test makes is checked against `pkg/schema/plan.schema.json`,
//! the schema the npm package publishes: a plan the schema does not describe
//! fails the test that made it.

use serde_json::Value;
use std::sync::OnceLock;

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let text = include_str!("../../pkg/schema/plan.schema.json");
        let schema: Value = serde_json::from_str(text).expect("plan.schema.json is JSON");
        jsonschema::validator_for(&schema).expect("plan.schema.json is a valid JSON Schema")
    })
}

/// `plan`, or a panic listing where it breaks the schema.
pub fn checked(plan: Value) -> Value {
    let problems: Vec<String> = validator()
        .iter_errors(&plan)
        .take(10)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "the plan does not match plan.schema.json:\n{}",
        problems.join("\n")
    );
    plan
}

/// `plan_json`'s text, checked.
pub fn checked_text(text: &str) -> String {
    checked(serde_json::from_str(text).expect("plan_json writes JSON"));
    text.to_owned()
}
