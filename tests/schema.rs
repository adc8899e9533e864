//! The published plan schema has teeth: the sample's plan passes it, and the
//! same plan with a value the planner never writes does not.

mod support;

use serde_json::{json, Value};
use std::panic::catch_unwind;

fn refused(plan: Value) -> bool {
    catch_unwind(|| support::schema::checked(plan)).is_err()
}

#[test]
fn the_sample_plan_matches_and_altered_plans_do_not() {
    let plan = support::plan(&support::sample());
    let altered: [(&str, Value); 5] = [
        ("/operations/0/reason", json!("because")),
        ("/operations/0/action", json!("upsert")),
        ("/operations/0/stage", json!("virtual_machines")),
        ("/summary/create", json!(-1)),
        ("/modes/effective/vm", json!("sometimes")),
    ];
    for (pointer, value) in altered {
        let mut bad = plan.clone();
        *bad.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{pointer} is in the sample plan")) = value;
        assert!(
            refused(bad),
            "the schema accepts {pointer} = something the planner never writes"
        );
    }
    let mut extra = plan.clone();
    extra["warnings"] = json!([{ "code": "no-such-code", "message": "x" }]);
    assert!(refused(extra));
}
