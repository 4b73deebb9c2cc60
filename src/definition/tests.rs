use proptest::prelude::*;

use super::*;

fn full() -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .start_on_message("OrderPlaced")
        .service("reserve", "reserve_stock")
        .output("reservation")
        .send("charge", "RetrievePayment")
        .to("payment")
        .key("order.id")
        .payload(["order", "amount"])
        .receive("paid", "PaymentReceived")
        .key("order.id")
        .output("payment")
        .send("notify", "OrderPaid")
        .end("done")
        .build()
        .unwrap()
}

const FULL_JSON: &str = r#"{
  "process": "order",
  "start": { "message": "OrderPlaced" },
  "steps": [
    { "id": "reserve", "type": "service", "handler": "reserve_stock", "output": "reservation", "next": "charge" },
    { "id": "charge", "type": "send", "message": "RetrievePayment", "to": "payment", "key": "order.id",
      "payload": ["order", "amount"], "next": "paid" },
    { "id": "paid", "type": "receive", "message": "PaymentReceived", "key": "order.id", "output": "payment", "next": "notify" },
    { "id": "notify", "type": "send", "message": "OrderPaid", "next": "done" },
    { "id": "done", "type": "end" }
  ]
}"#;

#[test]
fn the_builder_and_the_json_document_are_one_model() {
    let built = full();
    let parsed = ProcessDefinition::from_json(FULL_JSON).unwrap();
    assert_eq!(built, parsed);
    let again = ProcessDefinition::from_json(&built.to_json()).unwrap();
    assert_eq!(again, built);
    assert_eq!(again.checksum(), built.checksum());
}

#[test]
fn the_shipped_order_document_is_valid() {
    let def = ProcessDefinition::from_json(include_str!("../../examples/definitions/order.json"))
        .unwrap();
    assert_eq!(def.process, "order");
    assert_eq!(
        def.received_messages(),
        [
            "CreditCardUpdated",
            "GoodsFetched",
            "GoodsShipped",
            "OrderPlaced",
            "PaymentFailed",
            "PaymentReceived"
        ]
    );
}

fn problems(json: &str) -> Vec<String> {
    match ProcessDefinition::from_json(json) {
        Err(Error::Invalid(p)) => p.iter().map(ToString::to_string).collect(),
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn a_typo_in_next_names_its_path() {
    let json = FULL_JSON.replace(r#""next": "done""#, r#""next": "shipp_goods""#);
    assert_eq!(
        problems(&json),
        [r#"steps[3].next: unknown step "shipp_goods""#]
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let json = r#"{
      "process": "Order",
      "steps": [
        { "id": "a", "type": "service", "handler": "", "next": "b" },
        { "id": "a", "type": "send", "message": "M", "key": "x..y", "next": "c" },
        { "id": "c", "type": "end", "next": "a" },
        { "id": "d", "type": "receive", "message": "R" }
      ]
    }"#;
    let p = problems(json);
    let expected = [
        r#"process: invalid process id "Order""#,
        "steps[0].handler: a handler name must be non-empty",
        r#"steps[1].id: duplicate step id "a" (first at steps[0])"#,
        r#"steps[1].key: invalid variable path "x..y""#,
        r#"steps[0].next: unknown step "b""#,
        "steps[2].next: an end step has no next step",
        "steps[3].next: a receive step needs a next step",
    ];
    for e in expected {
        assert!(
            p.iter().any(|x| x.starts_with(e)),
            "missing {e:?} in {p:#?}"
        );
    }
}

#[test]
fn unreachable_steps_and_missing_ends_are_refused() {
    let json = r#"{"process": "p", "steps": [
        {"id": "a", "type": "send", "message": "M", "next": "b"},
        {"id": "b", "type": "send", "message": "M", "next": "a"},
        {"id": "c", "type": "end"}
    ]}"#;
    let p = problems(json);
    assert!(p.contains(&"steps: no path from the first step reaches an end step".to_string()));
    assert!(p.contains(&r#"steps[2]: step "c" cannot be reached from the first step"#.to_string()));
}

#[test]
fn shape_errors_name_line_and_column() {
    for (json, needle) in [
        ("not json", "line 1"),
        (
            r#"{"process": "p", "steps": [{"id": "a", "type": "fly"}]}"#,
            "unknown type \"fly\"",
        ),
        (
            r#"{"process": "p", "steps": [{"id": "a", "type": "end", "nxt": "b"}]}"#,
            "unknown field `nxt`",
        ),
        (
            r#"{"process": "p", "steps": [{"id": "a", "type": "service", "next": "b"}]}"#,
            "needs `handler`",
        ),
        (
            r#"{"process": "p", "steps": [{"id": "a", "type": "end", "handler": "h"}]}"#,
            "has no field `handler`",
        ),
        (r#"{"process": "p"}"#, "missing field `steps`"),
    ] {
        match ProcessDefinition::from_json(json) {
            Err(e @ Error::Parse { .. }) => {
                assert!(
                    e.to_string().contains(needle),
                    "{e} should mention {needle}"
                )
            }
            other => panic!("{json}: expected a parse error, got {other:?}"),
        }
    }
}

fn arb_ident() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,8}"
}

fn arb_kind() -> impl Strategy<Value = StepKind> {
    prop_oneof![
        (
            arb_ident(),
            proptest::option::of(arb_ident()),
            proptest::option::of(1u32..100)
        )
            .prop_map(|(h, o, t)| StepKind::Service {
                handler: h,
                output: o.map(Output::Variable).unwrap_or_default(),
                timeout: t.map(|s| format!("PT{s}S")),
                retry: t.map(|n| RetryPolicy {
                    max_attempts: n % 10 + 1,
                    initial_interval: "PT2S".into(),
                    backoff: 1.5,
                    max_interval: Some("PT1M".into()),
                    jitter: n % 2 == 0,
                }),
                errors: t
                    .map(|n| vec![ErrorRoute::new(format!("E{n}"), "end")])
                    .unwrap_or_default(),
                headers: match t {
                    Some(n) if n % 3 == 0 => [("template".to_string(), format!("t{n}"))].into(),
                    _ => Default::default(),
                },
            }),
        (1u32..100).prop_map(|d| StepKind::Timer {
            timer: TimerSpec::After(format!("P{d}D"))
        }),
        arb_ident().prop_map(|v| StepKind::Timer {
            timer: TimerSpec::Until(v)
        }),
        (
            "[A-Z][a-zA-Z]{0,8}",
            proptest::option::of(arb_ident()),
            proptest::option::of(arb_ident()),
            proptest::option::of(prop::collection::vec(arb_ident(), 0..3))
        )
            .prop_map(|(m, to, key, payload)| StepKind::Send {
                message: m,
                to,
                key,
                payload
            }),
        ("[A-Z][a-zA-Z]{0,8}", proptest::option::of(arb_ident())).prop_map(|(m, key)| {
            StepKind::Receive {
                message: m,
                key,
                output: Output::Merge,
            }
        }),
    ]
}

proptest! {
    #[test]
    fn valid_definitions_round_trip_through_json(kinds in prop::collection::vec(arb_kind(), 0..8)) {
        let n = kinds.len();
        let mut steps: Vec<Step> = kinds.into_iter().enumerate().map(|(i, kind)| {
            let waits = matches!(kind, StepKind::Service { .. } | StepKind::Receive { .. });
            let kind_name = kind.type_name();
            Step {
                id: format!("s{i}"),
                kind,
                next: Some(if i + 1 < n { format!("s{}", i + 1) } else { "end".into() }),
                boundary: if waits {
                    vec![
                        Boundary { on: BoundaryEvent::Timer(TimerSpec::After("P14D".into())), interrupting: true, next: Some("end".into()), send: None, assign: None },
                        Boundary { on: BoundaryEvent::Timer(TimerSpec::Cycle("R3/P7D".into())), interrupting: false, next: None, send: Some(("Remind".into(), Some("customer".into()))), assign: None },
                    ]
                } else {
                    Vec::new()
                },
                compensate: if i % 2 == 0 && matches!(kind_name, "service" | "send") {
                    Some(Compensation::Send { send: "Undo".into(), to: Some("r".into()) })
                } else if matches!(kind_name, "service") {
                    Some(Compensation::Handler { handler: "undo".into() })
                } else {
                    None
                },
                inputs: if kind_name == "service" { vec![Mapping::new("=order.id", "order_id")] } else { Vec::new() },
                outputs: if kind_name == "service" && i % 2 == 1 { vec![Mapping::new("=charge.id", "payment_id"), Mapping::new("fixed", "source")] } else { Vec::new() },
                within: None,
                multi: None,
                milestone: (i % 3 == 0).then(|| format!("stage {i}")),
            }
        }).collect();
        steps.push(Step { id: "end".into(), kind: StepKind::End, next: None, boundary: Vec::new(), compensate: None, inputs: Vec::new(), outputs: Vec::new(), within: None, multi: None, milestone: Some("done".into()) });
        let def = ProcessDefinition { process: "p".into(), start: None, starts: Vec::new(), start_signal: None, start_timer: None, retry: Some(RetryPolicy::new(3, "PT1S")), variables: Default::default(), unique_business_key: None, retention: None, steps };
        prop_assert!(def.validate().is_ok());
        let back = ProcessDefinition::from_json(&def.to_json()).unwrap();
        prop_assert_eq!(&back, &def);
        // And through BPMN: export, then import, gives the same model.
        let xml = crate::bpmn::export(&def).xml;
        let through_bpmn = crate::bpmn::import(&xml).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        prop_assert_eq!(through_bpmn, def);
    }

    #[test]
    fn arbitrary_text_never_panics_the_parser(text in ".{0,200}") {
        let _ = ProcessDefinition::from_json(&text);
    }
}

#[test]
fn gateway_conditions_are_checked_at_deploy_with_step_and_column() {
    let doc = |when: &str, vars: &str| {
        format!(
            r#"{{"process": "p", {vars} "steps": [
                {{"id": "check", "type": "exclusive", "routes": [{{"when": {when}, "next": "a"}}], "default": "b"}},
                {{"id": "a", "type": "end"}}, {{"id": "b", "type": "end"}}]}}"#,
            when = serde_json::to_string(when).unwrap()
        )
    };
    let problem = |text: String| match ProcessDefinition::from_json(&text) {
        Err(Error::Invalid(p)) => p[0].to_string(),
        other => panic!("expected a problem, got {other:?}"),
    };
    let typed = r#""variables": {"amount": "number", "customer": "object"},"#;
    // An unknown variable used as a number, where types are declared.
    let p = problem(doc("amout > 1000", typed));
    assert!(
        p.starts_with("steps[0].routes[0].when: column 1: unknown variable `amout`"),
        "{p}"
    );
    // A declared string compared with a number.
    let p = problem(doc(
        "amount > 1 && customer.name == 'x' && amount == 'high'",
        typed,
    ));
    assert!(
        p.contains("column 46") && p.contains("number with a string"),
        "{p}"
    );
    // A syntax error, with its column.
    let p = problem(doc("amount >> 3", ""));
    assert!(p.starts_with("steps[0].routes[0].when: column 9:"), "{p}");
    // Over the size budget.
    let long = vec!["amount > 1"; 40].join(" || ");
    let p = problem(doc(&long, ""));
    assert!(p.contains("more than 64 parts"), "{p}");
    // Fine ones pass.
    ProcessDefinition::from_json(&doc("amount > 1000 && customer.vip == true", typed)).unwrap();
}

#[test]
fn control_flow_steps_round_trip_and_refuse_misplaced_fields() {
    let def = ProcessDefinition::builder("flow")
        .variable("amount", crate::expr::Type::Number)
        .parallel("fork", ["a", "gw"])
        .call("a", "child")
        .payload(["amount"])
        .output("child")
        .next("join")
        .event_gateway("gw")
        .key("orderId")
        .on_message("Paid", "join")
        .output("payment")
        .on_timer("PT1H", "join")
        .join("join")
        .exclusive("route")
        .when("amount > 10", "big")
        .otherwise("small")
        .end("big")
        .end("small")
        .build()
        .unwrap();
    let json = def.to_json();
    assert_eq!(ProcessDefinition::from_json(&json).unwrap(), def);
    assert_eq!(def.incoming("join"), 3);
    for (bad, expected) in [
        (
            r#"{"id": "f", "type": "parallel", "branches": ["x", "y"], "next": "x"}"#,
            "has no `next`",
        ),
        (
            r#"{"id": "f", "type": "service", "handler": "h", "branches": ["x"], "next": "x"}"#,
            "has no field `branches`",
        ),
        (
            r#"{"id": "f", "type": "event_gateway", "events": [{"message": "M", "after": "PT1S", "next": "x"}]}"#,
            "exactly one of",
        ),
        (
            r#"{"id": "f", "type": "call", "next": "x"}"#,
            "needs `process`",
        ),
    ] {
        let text = format!(
            r#"{{"process": "p", "steps": [{bad}, {{"id": "x", "type": "end"}}, {{"id": "y", "type": "end"}}]}}"#
        );
        let e = ProcessDefinition::from_json(&text).unwrap_err().to_string();
        assert!(e.contains(expected), "{bad}: {e}");
    }
}

#[test]
fn a_user_task_in_json_is_the_builder_s_and_its_problems_name_their_paths() {
    use crate::expr::Type;
    let json = r#"{
      "process": "refund",
      "steps": [
        { "id": "approve", "type": "user_task", "candidate_groups": ["sales", "=region"],
          "assignee": "=owner", "due": "P2D", "follow_up": "2026-12-24T10:00:00Z", "priority": 70,
          "form": "forms/refund", "fields": {"approved": "boolean", "note": "string"},
          "boundary": [ { "after": "P2D", "interrupting": false,
                          "assign": { "candidate_groups": ["supervisors"] } },
                        { "after": "P14D", "next": "done" } ],
          "next": "done" },
        { "id": "done", "type": "end" }
      ]
    }"#;
    let parsed = ProcessDefinition::from_json(json).unwrap();
    let built = ProcessDefinition::builder("refund")
        .user_task(
            "approve",
            UserTask::new()
                .candidate_groups(["sales", "=region"])
                .assignee("=owner")
                .due("P2D")
                .follow_up("2026-12-24T10:00:00Z")
                .priority(70)
                .form("forms/refund")
                .field("approved", Type::Boolean)
                .field("note", Type::String),
        )
        .escalate(
            TimerSpec::After("P2D".into()),
            Reassign {
                candidate_groups: Some(vec!["supervisors".into()]),
                ..Reassign::default()
            },
        )
        .timeout_after("P14D", "done")
        .end("done")
        .build()
        .unwrap();
    assert_eq!(parsed, built);
    // The default priority is not written out; the document reads back the same.
    assert_eq!(
        ProcessDefinition::from_json(&parsed.to_json()).unwrap(),
        parsed
    );

    let bad = r#"{"process": "p", "steps": [
        { "id": "t", "type": "user_task", "candidate_groups": ["", "=a..b"], "due": "tomorrow",
          "priority": 101, "fields": {"x": "null"},
          "boundary": [ { "after": "P1D", "interrupting": false } ], "next": "e" },
        { "id": "e", "type": "end" } ]}"#;
    let p = problems(bad);
    for want in [
        "steps[0].candidate_groups[0]",
        "steps[0].candidate_groups[1]: invalid variable path",
        "steps[0].due: \"tomorrow\"",
        "steps[0].priority",
        "steps[0].fields: field \"x\"",
        "steps[0].boundary[0].send: a non-interrupting boundary event needs a path (`next`), a message to send or, on a user task, an `assign`",
    ] {
        assert!(p.iter().any(|x| x.starts_with(want)), "{want} in {p:?}");
    }
    // User task fields on another kind of step, and `assign` off a user task.
    let e = ProcessDefinition::from_json(
        r#"{"process": "p", "steps": [{"id": "s", "type": "service", "handler": "h", "due": "P1D", "next": "e"}, {"id": "e", "type": "end"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("has no field `due`"), "{e}");
    let e = ProcessDefinition::from_json(
        r#"{"process": "p", "steps": [{"id": "s", "type": "receive", "message": "M", "boundary": [{"after": "P1D", "interrupting": false, "assign": {"assignee": "x"}}], "next": "e"}, {"id": "e", "type": "end"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("only a user task's boundary timers `assign`"),
        "{e}"
    );
}

#[test]
fn a_completion_is_checked_against_the_declared_fields() {
    use crate::expr::Type;
    let t = UserTask::new()
        .field("approved", Type::Boolean)
        .field("amount", Type::Number)
        .field("extra", Type::Any);
    let ok = serde_json::json!({"approved": false, "amount": 3.5, "extra": [1]});
    assert_eq!(t.check_completion(ok.as_object().unwrap()), Ok(()));
    let bad = serde_json::json!({"approved": 1, "other": true});
    let e = t.check_completion(bad.as_object().unwrap()).unwrap_err();
    assert!(
        e.contains("\"approved\" must be a boolean, not a number"),
        "{e}"
    );
    assert!(e.contains("\"amount\" (number) is missing"), "{e}");
    assert!(e.contains("\"other\" is not a field"), "{e}");
    // Without fields, anything goes.
    assert_eq!(
        UserTask::new().check_completion(bad.as_object().unwrap()),
        Ok(())
    );
}
