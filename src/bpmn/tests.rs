//! Export and import, round trips, refusals, layout.

use super::export::*;
use super::import::*;
use super::*;
use crate::definition::{Compensation, ProcessDefinition, StepKind, TimerSpec};

/// Every construct of the model in one definition.
fn everything() -> ProcessDefinition {
    use crate::definition::{RetryPolicy, TimerSpec};
    ProcessDefinition::builder("everything")
        .start_on_message("Go")
        .retry(RetryPolicy::new(3, "PT1S"))
        .parallel("fork", ["charge", "gw"])
        .service("charge", "charge_card")
        .output("charge")
        .timeout("PT30S")
        .on_error("CardDeclined", "declined")
        .compensate(Compensation::Handler {
            handler: "refund".into(),
        })
        .next("join")
        .event_gateway("gw")
        .key("orderId")
        .on_message("Paid", "join")
        .output("payment")
        .on_timer("PT1H", "join")
        .join("join")
        .call("check", "credit_check")
        .payload(["amount"])
        .output("credit")
        .exclusive("route")
        .when("credit.score >= 600 && amount < 1000", "wait_ship")
        .otherwise("cool_off")
        .receive("wait_ship", "Shipped")
        .key("orderId")
        .timeout_after("P14D", "undo")
        .remind(TimerSpec::After("P7D".into()), "Reminder", Some("customer"))
        .or_message("Lost", "undo")
        .send("notify", "Done")
        .to("mail")
        .compensate(Compensation::Send {
            send: "Retract".into(),
            to: Some("mail".into()),
        })
        .end("done")
        .wait_for("cool_off", "PT1H")
        .next("wait_ship")
        .end("declined")
        .compensate_all("undo")
        .end("undone")
        .build()
        .unwrap()
}

fn order() -> ProcessDefinition {
    ProcessDefinition::from_json(include_str!("../../examples/definitions/order.json")).unwrap()
}

#[test]
fn camunda_7_external_tasks_and_plain_starts_import() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:c7="http://camunda.org/schema/1.0/bpmn" id="d">
  <process id="Invoice_7" isExecutable="true">
<startEvent id="Start"><outgoing>f1</outgoing></startEvent>
<serviceTask id="Pay" c7:type="external" c7:topic="pay_invoice"><incoming>f1</incoming><outgoing>f2</outgoing></serviceTask>
<endEvent id="End"><incoming>f2</incoming></endEvent>
<sequenceFlow id="f1" sourceRef="Start" targetRef="Pay" />
<sequenceFlow id="f2" sourceRef="Pay" targetRef="End" />
  </process>
</definitions>"#;
    let def = import(xml).unwrap();
    assert_eq!(def.process, "invoice_7");
    assert!(def.start.is_none());
    assert!(
        matches!(&def.steps[0].kind, StepKind::Service { handler, .. } if handler == "pay_invoice")
    );
    assert_eq!(def.steps[0].next.as_deref(), Some("end"));
}

#[test]
fn feel_equality_becomes_double_equals() {
    assert_eq!(
        feel_condition("status = \"gold\" and amount >= 10"),
        "status == \"gold\" and amount >= 10"
    );
    assert_eq!(
        feel_condition("a != 1 or b <= 2 or c == 3"),
        "a != 1 or b <= 2 or c == 3"
    );
    assert_eq!(feel_condition("note = 'a=b'"), "note == 'a=b'");
}

#[test]
fn export_then_import_gives_the_same_model() {
    for def in [order(), everything()] {
        let xml = export(&def).xml;
        let back = import(&xml).unwrap_or_else(|e| panic!("{}: {e}\n{xml}", def.process));
        assert_eq!(back, def);
    }
}

#[test]
fn a_literal_time_date_is_a_date_not_a_variable() {
    let with = |date: &str| {
        let mut def = ProcessDefinition::builder("dated")
            .wait_until("hold", "holdUntil")
            .end("done")
            .build()
            .unwrap();
        let xml = export(&def).xml.replace("=holdUntil", date);
        def = import(&xml).map_err(|e| e.to_string())?;
        match &def.steps[0].kind {
            StepKind::Timer { timer } => Ok::<TimerSpec, String>(timer.clone()),
            other => panic!("{other:?}"),
        }
    };
    // It used to become a variable path named "2026-12-24T10:00:00Z", and the instance
    // failed when it got there.
    assert_eq!(
        with("2026-12-24T10:00:00Z"),
        Ok(TimerSpec::Until("2026-12-24T10:00:00Z".into()))
    );
    assert_eq!(
        with("=date and time(\"2026-12-24T10:00:00+01:00\")"),
        Ok(TimerSpec::Until("2026-12-24T10:00:00+01:00".into()))
    );
    assert_eq!(with("=holdUntil"), Ok(TimerSpec::Until("holdUntil".into())));
    assert!(with("next tuesday")
        .unwrap_err()
        .contains("neither an ISO 8601 date-time"));
    // And it runs: the timer is due at that date.
    let def = import(
        &export(
            &ProcessDefinition::builder("d")
                .wait_until("hold", "x")
                .end("done")
                .build()
                .unwrap(),
        )
        .xml
        .replace("=x", "2026-12-24T10:00:00Z"),
    )
    .unwrap();
    let start = crate::machine::Input::Start {
        business_key: "k".into(),
        variables: Default::default(),
        message_id: None,
        parent: None,
        start_message: None,
        trace: None,
    };
    let ctx = crate::machine::Context {
        instance_id: uuid::Uuid::from_u128(1),
        next_seq: 1,
        now: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    };
    let events = crate::machine::decide(
        &crate::definition::compile(def.clone()),
        &crate::machine::InstanceState::default(),
        &start,
        ctx,
    )
    .unwrap();
    assert!(events.iter().any(|e| matches!(e, crate::machine::Event::TimerScheduled { due_at, .. } if due_at.to_rfc3339() == "2026-12-24T10:00:00+00:00")), "{events:?}");
    // Export writes it back as a literal.
    assert!(export(&def)
        .xml
        .contains(">2026-12-24T10:00:00Z</bpmn:timeDate>"));
}

#[test]
fn elements_outside_the_subset_are_refused_with_their_location() {
    let xml: String = export(&order())
        .xml
        .lines()
        .map(|l| {
            if l.contains("<bpmn:receiveTask id=\"wait_card\"") {
                l.replace("bpmn:receiveTask", "bpmn:businessRuleTask")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let e = import(&xml).unwrap_err();
    assert!(
        e.element.starts_with("businessRuleTask \"wait_card\""),
        "{e}"
    );
    assert!(e.line > 1 && e.column > 1, "{e}");
    assert!(e.message.contains("not supported"), "{e}");
    let e = import("<bpmn:definitions xmlns:bpmn=\"x\"").unwrap_err();
    assert!(e.message.contains("not well-formed"), "{e}");
}

#[test]
fn every_node_has_a_shape_its_flows_and_no_shapes_overlap() {
    for def in [order(), everything()] {
        let e = export(&def);
        let doc = roxmltree::Document::parse(&e.xml).expect("well-formed XML");
        let bpmn = |n: &roxmltree::Node| n.tag_name().namespace() == Some(BPMN_NS);
        let process = doc
            .descendants()
            .find(|n| bpmn(n) && n.tag_name().name() == "process")
            .unwrap();
        let flows: Vec<_> = process
            .children()
            .filter(|n| bpmn(n) && n.tag_name().name() == "sequenceFlow")
            .collect();
        for node in process.children().filter(|n| {
            bpmn(n)
                && n.is_element()
                && !matches!(n.tag_name().name(), "sequenceFlow" | "association")
        }) {
            let id = node.attribute("id").unwrap();
            assert!(e.shapes.contains_key(id), "{id} has a shape");
            // Every flow node lists its incoming and outgoing flows.
            for f in &flows {
                let listed = |tag: &str| {
                    node.children()
                        .any(|c| c.tag_name().name() == tag && c.text() == f.attribute("id"))
                };
                if f.attribute("sourceRef") == Some(id) {
                    assert!(listed("outgoing"), "{id} lists {:?}", f.attribute("id"));
                }
                if f.attribute("targetRef") == Some(id) {
                    assert!(listed("incoming"), "{id} lists {:?}", f.attribute("id"));
                }
            }
        }
        let plain: Vec<(&String, &Bounds)> = e
            .shapes
            .iter()
            .filter(|(id, _)| !e.boundary.contains(id))
            .collect();
        for (i, (a, ba)) in plain.iter().enumerate() {
            for (b, bb) in &plain[i + 1..] {
                assert!(!ba.overlaps(bb), "{a} and {b} overlap: {ba:?} {bb:?}");
            }
        }
        // Extension elements come first, event definitions after the flows (the schema's
        // order).
        for node in process.children().filter(|n| n.is_element()) {
            let names: Vec<&str> = node
                .children()
                .filter(|c| c.is_element())
                .map(|c| c.tag_name().name())
                .collect();
            if let Some(i) = names.iter().position(|n| *n == "extensionElements") {
                assert_eq!(i, 0, "{names:?}");
            }
            let last_flow = names
                .iter()
                .rposition(|n| matches!(*n, "incoming" | "outgoing"));
            let first_def = names.iter().position(|n| n.ends_with("EventDefinition"));
            if let (Some(f), Some(d)) = (last_flow, first_def) {
                assert!(f < d, "{names:?}");
            }
        }
        // Boundary events sit on their host's edge.
        for b in &e.boundary {
            let host = plain
                .iter()
                .find(|(_, h)| h.overlaps(&e.shapes[b]))
                .map(|(id, _)| id.as_str());
            assert!(host.is_some(), "{b} sits on a host");
        }
    }
}
