//! Shapes real modelers draw that longrun used to get wrong: an exclusive gateway used as a
//! merge, a call activity naming its callee as the modeler wrote it, message names in words,
//! a process calling itself, and problems reported at their element.

use super::*;
use crate::definition::StepKind;
use crate::machine::{decide, evolve, Context, Event, Input, InstanceState};

/// A modeler-style document: `body` inside the executable process, `extra` beside it.
fn doc(body: &str, extra: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Definitions_1">
  <bpmn:process id="Process_Main" isExecutable="true">
{body}
  </bpmn:process>
{extra}
</bpmn:definitions>"#
    )
}

fn start(variables: serde_json::Value) -> Input {
    Input::Start {
        business_key: "k".into(),
        variables: variables.as_object().unwrap().clone(),
        message_id: None,
        parent: None,
        start_message: None,
        trace: None,
    }
}

fn ctx() -> Context {
    Context {
        instance_id: uuid::Uuid::from_u128(1),
        next_seq: 1,
        now: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    }
}

#[test]
fn an_exclusive_gateway_used_as_a_merge_imports_and_runs() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="split" default="f2" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="split" />
    <bpmn:sequenceFlow id="f1" sourceRef="split" targetRef="big">
      <bpmn:conditionExpression>=amount &gt; 100</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="small" />
    <bpmn:intermediateThrowEvent id="big"><bpmn:messageEventDefinition messageRef="m_big" /></bpmn:intermediateThrowEvent>
    <bpmn:intermediateThrowEvent id="small"><bpmn:messageEventDefinition messageRef="m_small" /></bpmn:intermediateThrowEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="big" targetRef="merge" />
    <bpmn:sequenceFlow id="f4" sourceRef="small" targetRef="merge" />
    <bpmn:exclusiveGateway id="merge" />
    <bpmn:sequenceFlow id="f5" sourceRef="merge" targetRef="end" />
    <bpmn:endEvent id="end" />"#,
        r#"  <bpmn:message id="m_big" name="Big order" />
  <bpmn:message id="m_small" name="Small order" />"#,
    );
    let def = import(&xml).unwrap();
    let merge = def.steps.iter().find(|s| s.id == "merge").unwrap();
    assert!(
        matches!(&merge.kind, StepKind::Exclusive { routes, default: Some(d) } if routes.is_empty() && d == "end"),
        "{:?}",
        merge.kind
    );
    // Both ways through it end the instance.
    let process = crate::definition::compile(def.clone());
    for (amount, sent) in [(500, "Big order"), (5, "Small order")] {
        let events = decide(
            &process,
            &InstanceState::default(),
            &start(serde_json::json!({ "amount": amount })),
            ctx(),
        )
        .unwrap();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::MessageSent { name, .. } if name == sent)),
            "{events:?}"
        );
        assert!(
            matches!(events.last(), Some(Event::InstanceCompleted { step }) if step == "end"),
            "{events:?}"
        );
        let mut state = InstanceState::default();
        for e in &events {
            evolve(&mut state, e);
        }
        assert!(state.status.is_ended());
    }
    // And it goes out and comes back as a merge.
    let again = import(&export(&def).xml).unwrap();
    assert_eq!(again.steps.len(), def.steps.len());
}

fn caller(process_id: &str) -> String {
    doc(
        &format!(
            r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:callActivity id="call">
      <bpmn:extensionElements><zeebe:calledElement processId="{process_id}" /></bpmn:extensionElements>
    </bpmn:callActivity>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="call" />
    <bpmn:sequenceFlow id="f1" sourceRef="call" targetRef="end" />
    <bpmn:endEvent id="end" />"#
        ),
        "",
    )
}

#[test]
fn a_call_activity_names_its_callee_as_the_callee_deployed() {
    // The callee `start-end` deployed as `start_end`: the reference is read the same way.
    for written in ["start-end", "=&quot;start-end&quot;"] {
        let def = import(&caller(written)).unwrap();
        assert!(
            matches!(&def.steps[0].kind, StepKind::Call { process, .. } if process == "start_end"),
            "{written}: {:?}",
            def.steps[0].kind
        );
    }
    // A callee chosen by an expression is refused at the element, not read as a name.
    let e = import(&caller("=processId")).unwrap_err();
    assert_eq!(e.element, "callActivity \"call\"", "{e}");
    assert!(e.message.contains("expression"), "{e}");
}

#[test]
fn a_process_calling_itself_is_refused_at_the_element() {
    let e = import(&caller("Process_Main")).unwrap_err();
    assert_eq!(e.element, "callActivity \"call\"", "{e}");
    assert!(e.message.contains("cannot call itself"), "{e}");
}

#[test]
fn message_names_in_words_are_accepted_and_problems_point_at_their_element() {
    let receive = |name: &str| {
        doc(
            r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:receiveTask id="Wait_Payment" messageRef="m1" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="Wait_Payment" />
    <bpmn:sequenceFlow id="f1" sourceRef="Wait_Payment" targetRef="end" />
    <bpmn:endEvent id="end" />"#,
            &format!(
                r#"  <bpmn:message id="m1" name="{name}">
    <bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements>
  </bpmn:message>"#
            ),
        )
    };
    let def = import(&receive("Payment received")).unwrap();
    assert!(
        matches!(&def.steps[0].kind, StepKind::Receive { message, .. } if message == "Payment received")
    );
    assert!(crate::store::Message::new("Payment received", "o-1", "m-1")
        .check()
        .is_ok());
    // A name with a space at its end is refused, at the receive task (it used to point at
    // the process and at `steps[0]`).
    let e = import(&receive("Payment received ")).unwrap_err();
    assert_eq!(e.element, "receiveTask \"Wait_Payment\"", "{e}");
    assert!(e.message.starts_with("message: a message name"), "{e}");
    assert!(!e.to_string().contains("steps["), "{e}");
}

fn service(definition: &str) -> String {
    doc(
        &format!(
            r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="charge">
      <bpmn:extensionElements>{definition}</bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="charge" />
    <bpmn:sequenceFlow id="f1" sourceRef="charge" targetRef="end" />
    <bpmn:endEvent id="end" />"#
        ),
        "",
    )
}

#[test]
fn zeebe_retries_and_job_types_are_read_not_dropped() {
    // retries="3": three attempts (it was ignored).
    let def = import(&service(
        r#"<zeebe:taskDefinition type="charge" retries="3" />"#,
    ))
    .unwrap();
    match &def.steps[0].kind {
        StepKind::Service { handler, retry, .. } => {
            assert_eq!(handler, "charge");
            assert_eq!(retry.as_ref().map(|r| r.max_attempts), Some(3));
        }
        other => panic!("{other:?}"),
    }
    // A quoted literal type is its name; an expression is refused (it became the handler `=x`).
    let def = import(&service(
        r#"<zeebe:taskDefinition type="=&quot;charge&quot;" />"#,
    ))
    .unwrap();
    assert!(matches!(&def.steps[0].kind, StepKind::Service { handler, .. } if handler == "charge"));
    let e = import(&service(r#"<zeebe:taskDefinition type="=x" />"#)).unwrap_err();
    assert_eq!(e.element, "serviceTask \"charge\"", "{e}");
    assert!(e.message.contains("expression"), "{e}");
    let e = import(&service(
        r#"<zeebe:taskDefinition type="charge" retries="many" />"#,
    ))
    .unwrap_err();
    assert!(e.message.contains("retries"), "{e}");
}

#[test]
fn a_second_executable_process_is_refused_not_dropped() {
    let second = r#"  <bpmn:process id="Process_Other" isExecutable="true">
    <bpmn:startEvent id="other_start" />
  </bpmn:process>"#;
    let e = import(&doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="end" />
    <bpmn:endEvent id="end" />"#,
        second,
    ))
    .unwrap_err();
    assert_eq!(e.element, "process \"Process_Other\"", "{e}");
    assert!(e.message.contains("second executable process"), "{e}");
    // A pool that does not run (a partner's, isExecutable="false") is fine.
    import(&doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="end" />
    <bpmn:endEvent id="end" />"#,
        &second.replace("isExecutable=\"true\"", "isExecutable=\"false\""),
    ))
    .unwrap();
}

#[test]
fn extensions_that_change_behaviour_are_refused_not_dropped() {
    for extension in [
        r#"<zeebe:executionListeners><zeebe:executionListener eventType="start" type="audit" /></zeebe:executionListeners>"#,
        r#"<camunda:inputOutput xmlns:camunda="http://camunda.org/schema/1.0/bpmn"><camunda:inputParameter name="a"><camunda:script scriptFormat="groovy">1</camunda:script></camunda:inputParameter></camunda:inputOutput>"#,
    ] {
        let e = import(&service(&format!(
            r#"<zeebe:taskDefinition type="charge" />{extension}"#
        )))
        .unwrap_err();
        assert!(e.message.contains("not run by longrun"), "{extension}: {e}");
        assert!(e.line > 1, "{e}");
    }
}

#[test]
fn camunda_7_input_and_output_parameters_are_mappings() {
    let def = import(&service(
        r#"<zeebe:taskDefinition type="charge" /><camunda:inputOutput xmlns:camunda="http://camunda.org/schema/1.0/bpmn">
          <camunda:inputParameter name="amount">${order.total}</camunda:inputParameter>
          <camunda:inputParameter name="currency">EUR</camunda:inputParameter>
          <camunda:outputParameter name="payment_id">${charge.id}</camunda:outputParameter>
          <camunda:inputParameter name="big">${order.total gt 100}</camunda:inputParameter>
        </camunda:inputOutput>"#,
    ))
    .unwrap();
    let big = &def.step("charge").unwrap().inputs[2];
    let vars = serde_json::json!({"order": {"total": 150}});
    assert_eq!(
        big.value(vars.as_object().unwrap(), &serde_json::Map::new(), None),
        true
    );
    let step = def.step("charge").unwrap();
    let show = |m: &[crate::definition::Mapping]| -> Vec<(String, String)> {
        m.iter()
            .map(|m| (m.source.clone(), m.target.clone()))
            .collect()
    };
    assert_eq!(
        show(&step.inputs),
        [
            ("=order.total".to_string(), "amount".to_string()),
            ("EUR".to_string(), "currency".to_string()),
            ("=order.total > 100".to_string(), "big".to_string())
        ]
    );
    assert_eq!(
        show(&step.outputs),
        [("=charge.id".to_string(), "payment_id".to_string())]
    );
    let e = import(&service(
        r#"<zeebe:taskDefinition type="charge" /><camunda:inputOutput xmlns:camunda="http://camunda.org/schema/1.0/bpmn"><camunda:inputParameter name="a">total: ${order.total}</camunda:inputParameter></camunda:inputOutput>"#,
    ))
    .unwrap_err();
    assert!(e.message.contains("mixes text and an expression"), "{e}");
}

#[test]
fn a_compensation_end_event_undoes_then_ends() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sendTask id="reserve" messageRef="m_reserve" />
    <bpmn:boundaryEvent id="undo_b" attachedToRef="reserve"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>
    <bpmn:sendTask id="release" isForCompensation="true" messageRef="m_release" />
    <bpmn:association id="a1" associationDirection="One" sourceRef="undo_b" targetRef="release" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="reserve" />
    <bpmn:sequenceFlow id="f1" sourceRef="reserve" targetRef="give_up" />
    <bpmn:endEvent id="give_up"><bpmn:compensateEventDefinition /></bpmn:endEvent>"#,
        r#"  <bpmn:message id="m_reserve" name="Reserve" />
  <bpmn:message id="m_release" name="Release" />"#,
    );
    let def = import(&xml).unwrap();
    let process = crate::definition::compile(def.clone());
    let events = decide(
        &process,
        &InstanceState::default(),
        &start(serde_json::json!({})),
        ctx(),
    )
    .unwrap();
    let sent: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::MessageSent { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(sent, ["Reserve", "Release"]);
    assert!(
        matches!(events.last(), Some(Event::InstanceCompleted { step }) if step == "give_up_end"),
        "{events:?}"
    );
}

#[test]
fn task_headers_reach_the_model_and_go_back_out() {
    let def = import(&service(
        r#"<zeebe:taskDefinition type="charge" /><zeebe:taskHeaders><zeebe:header key="currency" value="EUR" /><zeebe:header key="template" value="receipt &amp; thanks" /></zeebe:taskHeaders>"#,
    ))
    .unwrap();
    let headers = |d: &crate::definition::ProcessDefinition| {
        d.steps
            .iter()
            .find_map(|s| match &s.kind {
                StepKind::Service { headers, .. } => Some(headers.clone()),
                _ => None,
            })
            .unwrap()
    };
    let want: std::collections::BTreeMap<String, String> = [
        ("currency".to_string(), "EUR".to_string()),
        ("template".to_string(), "receipt & thanks".to_string()),
    ]
    .into();
    assert_eq!(headers(&def), want);
    assert_eq!(headers(&import(&export(&def).xml).unwrap()), want);
    // A header without its value is a problem at the header.
    let e = import(&service(
        r#"<zeebe:taskDefinition type="charge" /><zeebe:taskHeaders><zeebe:header key="currency" /></zeebe:taskHeaders>"#,
    ))
    .unwrap_err();
    assert!(e.message.contains("key and a value"), "{e}");
}

#[test]
fn every_problem_in_a_file_is_reported_not_only_the_first() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:businessRuleTask id="Review" />
    <bpmn:serviceTask id="Charge" />
    <bpmn:scriptTask id="Script" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="Charge" />
    <bpmn:sequenceFlow id="f1" sourceRef="Charge" targetRef="end" />
    <bpmn:endEvent id="end" />"#,
        "",
    );
    let e = import(&xml).unwrap_err();
    let mut all = vec![(e.element.clone(), e.message.clone())];
    all.extend(
        e.others
            .iter()
            .map(|o| (o.element.clone(), o.message.clone())),
    );
    let elements: Vec<&str> = all.iter().map(|(el, _)| el.as_str()).collect();
    assert_eq!(
        elements,
        [
            "businessRuleTask \"Review\"",
            "serviceTask \"Charge\"",
            "scriptTask \"Script\""
        ],
        "{e}"
    );
    assert!(all[1].1.contains("needs zeebe:taskDefinition"), "{e}");
    // One line each, in document order.
    let text = e.to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text
        .lines()
        .all(|l| l.split(':').next().unwrap().parse::<u32>().is_ok()));
}

#[test]
fn camunda_7_history_time_to_live_becomes_the_retention_period_and_exports_as_longrun() {
    let with = |attr: &str| {
        format!(
            r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d">
  <bpmn:process id="p" isExecutable="true" {attr}>
    <bpmn:startEvent id="s"><bpmn:outgoing>f</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e" />
    <bpmn:endEvent id="e" />
  </bpmn:process>
</bpmn:definitions>"#
        )
    };
    let days = import(&with(r#"camunda:historyTimeToLive="30""#)).unwrap();
    assert_eq!(days.retention.as_deref(), Some("P30D"));
    assert_eq!(
        days.retention_period().unwrap(),
        Some(chrono::Duration::days(30))
    );
    let iso = import(&with(r#"camunda:historyTimeToLive="PT12H""#)).unwrap();
    assert_eq!(iso.retention.as_deref(), Some("PT12H"));
    let none = import(&with("")).unwrap();
    assert_eq!(none.retention, None);
    let bad = import(&with(r#"camunda:historyTimeToLive="P0D""#)).unwrap_err();
    assert!(bad.to_string().contains("retention"), "{bad}");
    // Exported as longrun's attribute, and read back the same.
    let again = import(&export(&days).xml).unwrap();
    assert_eq!(again.retention.as_deref(), Some("P30D"));
}

#[test]
fn timer_start_events_import_and_export() {
    use crate::definition::StartTimer;
    let with = |def: &str| {
        doc(
            &format!(
                r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing>{def}</bpmn:startEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="end" />
    <bpmn:endEvent id="end" />"#
            ),
            "",
        )
    };
    let cycle = import(&with(
        "<bpmn:timerEventDefinition><bpmn:timeCycle>R/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition>",
    ))
    .unwrap();
    assert_eq!(cycle.start_timer, Some(StartTimer::Cycle("R/PT1H".into())));
    let date = import(&with(
        r#"<bpmn:timerEventDefinition><bpmn:timeDate>="2026-12-24T10:00:00Z"</bpmn:timeDate></bpmn:timerEventDefinition>"#,
    ))
    .unwrap();
    assert_eq!(
        date.start_timer,
        Some(StartTimer::Date("2026-12-24T10:00:00Z".into()))
    );
    let expr = import(&with(
        "<bpmn:timerEventDefinition><bpmn:timeDuration>=wait</bpmn:timeDuration></bpmn:timerEventDefinition>",
    ))
    .unwrap_err();
    assert!(expr.to_string().contains("literal"), "{expr}");
    for def in [&cycle, &date] {
        let again = import(&export(def).xml).unwrap();
        assert_eq!(&again.start_timer, &def.start_timer);
    }
}

/// A Camunda 7 diagram as modelers draw it: a class and a delegate expression naming the
/// handlers, a JUEL condition, a plain task, a manual task, a milestone and a data object.
#[test]
fn camunda_7_delegates_juel_plain_tasks_and_data_objects_import_and_run() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d">
  <bpmn:process id="Claims" isExecutable="true">
    <bpmn:dataObjectReference id="ref" dataObjectRef="claim" />
    <bpmn:dataObject id="claim" />
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="check" camunda:class="com.acme.claims.CheckClaim" />
    <bpmn:task id="note" />
    <bpmn:exclusiveGateway id="big" default="small" />
    <bpmn:manualTask id="review" />
    <bpmn:intermediateThrowEvent id="reviewed" />
    <bpmn:serviceTask id="pay" camunda:delegateExpression="${payClaim}" />
    <bpmn:endEvent id="end" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="check" />
    <bpmn:sequenceFlow id="f1" sourceRef="check" targetRef="note" />
    <bpmn:sequenceFlow id="f2" sourceRef="note" targetRef="big" />
    <bpmn:sequenceFlow id="large" sourceRef="big" targetRef="review">
      <bpmn:conditionExpression>${amount gt 1000 &amp;&amp; status ne "closed"}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="small" sourceRef="big" targetRef="pay" />
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="reviewed" />
    <bpmn:sequenceFlow id="f4" sourceRef="reviewed" targetRef="pay" />
    <bpmn:sequenceFlow id="f5" sourceRef="pay" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"#;
    let def = import(xml).unwrap();
    let handler = |id: &str| match &def.steps.iter().find(|s| s.id == id).unwrap().kind {
        StepKind::Service { handler, .. } => handler.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(handler("check"), "com.acme.claims.CheckClaim");
    assert_eq!(handler("pay"), "payClaim");
    let big = def.steps.iter().find(|s| s.id == "big").unwrap();
    assert!(
        matches!(&big.kind, StepKind::Exclusive { routes, .. } if routes[0].when == "amount > 1000 && status != \"closed\""),
        "{:?}",
        big.kind
    );
    // A large claim goes through the review and the milestone to the payment; the plain and
    // manual tasks pass on.
    let process = crate::definition::compile(def.clone());
    let mut state = InstanceState::default();
    let mut ctx = ctx();
    let mut apply = |state: &mut InstanceState, input: Input| {
        let events = decide(&process, state, &input, ctx).unwrap();
        ctx.next_seq += events.len() as i64;
        for e in &events {
            evolve(state, e);
        }
        events
    };
    apply(
        &mut state,
        start(serde_json::json!({ "amount": 5000, "status": "open" })),
    );
    let job = |state: &InstanceState| match state.waits.first() {
        Some(crate::machine::Wait::Job { job_id, step, .. }) => (*job_id, step.clone()),
        other => panic!("{other:?}"),
    };
    let (check, step) = job(&state);
    assert_eq!(step, "check");
    let events = apply(
        &mut state,
        Input::JobCompleted {
            job_id: check,
            result: serde_json::Value::Null,
        },
    );
    let passed: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|e| match e {
            Event::GatewayDecided { step, next, .. } => Some((step.as_str(), next.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        passed,
        [
            ("note", "big"),
            ("big", "review"),
            ("review", "reviewed"),
            ("reviewed", "pay")
        ]
    );
    let (pay, step) = job(&state);
    assert_eq!(step, "pay");
    apply(
        &mut state,
        Input::JobCompleted {
            job_id: pay,
            result: serde_json::Value::Null,
        },
    );
    assert!(state.status.is_ended());
    // A method call on a bean names its handler; any other expression is refused with the
    // way out.
    let called = import(&xml.replace(
        r#"camunda:delegateExpression="${payClaim}""#,
        r#"camunda:expression="${claims.pay(execution, amount)}""#,
    ))
    .unwrap();
    assert!(called
        .steps
        .iter()
        .any(|s| matches!(&s.kind, StepKind::Service { handler, .. } if handler == "claims.pay")));
    for code in ["${amount * 2}", "${claims.pay(x).then(y)}", "${pay}"] {
        let refused = import(&xml.replace(
            r#"camunda:delegateExpression="${payClaim}""#,
            &format!(r#"camunda:expression="{code}""#),
        ))
        .unwrap_err();
        assert!(
            refused.to_string().contains("delegateExpression"),
            "{code}: {refused}"
        );
    }
}

#[test]
fn terminate_end_events_import_and_export() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="stop" />
    <bpmn:endEvent id="stop"><bpmn:terminateEventDefinition /></bpmn:endEvent>"#,
        "",
    );
    let def = import(&xml).unwrap();
    assert!(matches!(def.steps[0].kind, StepKind::Terminate));
    let again = import(&export(&def).xml).unwrap();
    assert!(matches!(again.steps[0].kind, StepKind::Terminate));
    let escalation_end = xml.replace("terminateEventDefinition", "escalationEventDefinition");
    assert!(import(&escalation_end)
        .unwrap_err()
        .to_string()
        .contains("escalation and other end events are not supported"));
}

#[test]
fn a_zeebe_user_task_imports_with_its_assignment_schedule_priority_and_form() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Review_Order" name="Review order">
      <bpmn:extensionElements>
        <zeebe:userTask />
        <zeebe:assignmentDefinition assignee="=owner" candidateGroups="sales, managers" candidateUsers="=[&quot;ann&quot;, &quot;bob&quot;]" />
        <zeebe:taskSchedule dueDate="=review_by" followUpDate="2026-12-24T10:00:00Z" />
        <zeebe:priorityDefinition priority="80" />
        <zeebe:formDefinition formId="review-form" />
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="Review_Order" />
    <bpmn:sequenceFlow id="f1" sourceRef="Review_Order" targetRef="end" />
    <bpmn:endEvent id="end" />"#,
        "",
    );
    let def = import(&xml).unwrap();
    let StepKind::UserTask(t) = &def.steps[0].kind else {
        panic!("{:?}", def.steps[0]);
    };
    assert_eq!(t.assignee.as_deref(), Some("=owner"));
    assert_eq!(t.candidate_groups, ["sales", "managers"]);
    assert_eq!(t.candidate_users, ["ann", "bob"]);
    assert_eq!(t.due.as_deref(), Some("=review_by"));
    assert_eq!(t.follow_up.as_deref(), Some("2026-12-24T10:00:00Z"));
    assert_eq!((t.priority, t.form.as_deref()), (80, Some("review-form")));
    // It runs: the task opens for the resolved owner.
    let process = crate::definition::compile(def);
    let events = decide(
        &process,
        &InstanceState::default(),
        &start(serde_json::json!({"owner": "carol"})),
        ctx(),
    )
    .unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::TaskCreated { assignee: Some(a), .. } if a == "carol")),
        "{events:?}"
    );
}

#[test]
fn a_camunda_7_user_task_imports_with_its_form_fields_and_refuses_code() {
    let c7 = |attrs: &str| {
        doc(
            &format!(
                r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="approve" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" {attrs}>
      <bpmn:extensionElements>
        <camunda:formData>
          <camunda:formField id="approved" type="boolean" />
          <camunda:formField id="amount" type="long" />
          <camunda:formField id="comment" type="string" />
        </camunda:formData>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="approve" />
    <bpmn:sequenceFlow id="f1" sourceRef="approve" targetRef="end" />
    <bpmn:endEvent id="end" />"#
            ),
            "",
        )
    };
    let def = import(&c7(
        r#"camunda:assignee="${initiator}" camunda:candidateGroups="accounting" camunda:dueDate="P3D" camunda:priority="20" camunda:formKey="embedded:app:forms/approve.html""#,
    ))
    .unwrap();
    let StepKind::UserTask(t) = &def.steps[0].kind else {
        panic!("{:?}", def.steps[0]);
    };
    assert_eq!(t.assignee.as_deref(), Some("=initiator"));
    assert_eq!(t.candidate_groups, ["accounting"]);
    assert_eq!(t.due.as_deref(), Some("P3D"));
    assert_eq!(t.priority, 20);
    assert_eq!(t.form.as_deref(), Some("embedded:app:forms/approve.html"));
    let fields: Vec<(&str, crate::expr::Type)> =
        t.fields.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    use crate::expr::Type;
    assert_eq!(
        fields,
        [
            ("amount", Type::Number),
            ("approved", Type::Boolean),
            ("comment", Type::String)
        ]
    );
    let e = import(&c7(r#"camunda:assignee="${users.pick(x)}""#)).unwrap_err();
    assert!(e.element.starts_with("userTask \"approve\""), "{e}");
    assert!(e.message.contains("cannot evaluate"), "{e}");
    let e = import(&c7(r#"camunda:priority="${p}""#)).unwrap_err();
    assert!(e.message.contains("0 to 100"), "{e}");
}

#[test]
fn a_user_task_with_its_escalation_survives_export_and_import() {
    use crate::definition::{Reassign, TimerSpec, UserTask};
    let def = crate::ProcessDefinition::builder("claims")
        .user_task(
            "call_customer",
            UserTask::new()
                .candidate_groups(["service", "=region"])
                .candidate_users(["ann"])
                .assignee("=owner")
                .due("P7D")
                .follow_up("=check_at")
                .priority(65)
                .form("forms/call")
                .field("reached", crate::expr::Type::Boolean)
                .output("call"),
        )
        .escalate(
            TimerSpec::After("P7D".into()),
            Reassign {
                candidate_groups: Some(vec!["supervisors".into()]),
                ..Reassign::default()
            },
        )
        .timeout_after("P14D", "given_up")
        .end("done")
        .end("given_up")
        .build()
        .unwrap();
    let xml = export(&def).xml;
    assert!(xml.contains("<bpmn:userTask"), "{xml}");
    assert!(xml.contains("zeebe:assignmentDefinition"), "{xml}");
    let back = import(&xml).unwrap();
    assert_eq!(back.steps, def.steps);
}

#[test]
fn signal_events_import_run_and_round_trip() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing>
      <bpmn:signalEventDefinition signalRef="Signal_Open" /></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="Wait_Closed">
      <bpmn:signalEventDefinition signalRef="Signal_Closed" /></bpmn:intermediateCatchEvent>
    <bpmn:intermediateThrowEvent id="Tell">
      <bpmn:signalEventDefinition signalRef="Signal_Closed" /></bpmn:intermediateThrowEvent>
    <bpmn:receiveTask id="Wait_Order" messageRef="m_order" />
    <bpmn:boundaryEvent id="Stop" attachedToRef="Wait_Order">
      <bpmn:signalEventDefinition signalRef="Signal_Stop" /></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="Tell" />
    <bpmn:sequenceFlow id="f1" sourceRef="Tell" targetRef="Wait_Closed" />
    <bpmn:sequenceFlow id="f2" sourceRef="Wait_Closed" targetRef="Wait_Order" />
    <bpmn:sequenceFlow id="f3" sourceRef="Wait_Order" targetRef="end" />
    <bpmn:sequenceFlow id="f4" sourceRef="Stop" targetRef="stopped" />
    <bpmn:endEvent id="end" />
    <bpmn:endEvent id="stopped" />"#,
        r#"  <bpmn:signal id="Signal_Open" name="Warehouse open" />
  <bpmn:signal id="Signal_Closed" name="Warehouse closed" />
  <bpmn:signal id="Signal_Stop" name="Stop" />
  <bpmn:message id="m_order" name="Order" />"#,
    );
    let def = import(&xml).unwrap();
    assert_eq!(def.start_signal.as_deref(), Some("Warehouse open"));
    let kinds: Vec<&str> = def.steps.iter().map(|s| s.kind.type_name()).collect();
    assert_eq!(kinds, ["signal", "wait_signal", "receive", "end", "end"]);
    assert!(matches!(
        &def.steps[2].boundary[0].on,
        crate::definition::BoundaryEvent::Signal(s) if s == "Stop"
    ));
    // It runs: the throw, then the wait for the signal.
    let process = crate::definition::compile(def.clone());
    let events = decide(
        &process,
        &InstanceState::default(),
        &start(serde_json::json!({})),
        ctx(),
    )
    .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.type_name()).collect();
    assert_eq!(types, ["InstanceStarted", "SignalThrown", "MessageAwaited"]);
    // Export and import again: the same model.
    let back = import(&export(&def).xml).unwrap();
    assert_eq!(back.steps, def.steps);
    assert_eq!(back.start_signal, def.start_signal);
}

#[test]
fn an_inclusive_gateway_and_its_join_round_trip_through_bpmn() {
    let def = crate::ProcessDefinition::builder("extras")
        .inclusive("extras")
        .when("gift == true", "wrap")
        .when("express == true", "expedite")
        .otherwise("pack")
        .receive("wrap", "Wrapped")
        .next("together")
        .receive("expedite", "Expedited")
        .next("together")
        .send("pack", "Packed")
        .next("together")
        .inclusive_join("together")
        .end("done")
        .build()
        .unwrap();
    let xml = export(&def).xml;
    assert_eq!(xml.matches("<bpmn:inclusiveGateway").count(), 2, "{xml}");
    let back = import(&xml).unwrap();
    assert_eq!(back.steps, def.steps);
    // Both routes hold: both branches start, and the join is named.
    let process = crate::definition::compile(back);
    let events = decide(
        &process,
        &InstanceState::default(),
        &start(serde_json::json!({"gift": true, "express": true})),
        ctx(),
    )
    .unwrap();
    assert!(events.iter().any(|e| matches!(e,
        Event::InclusiveForked { branches, join, .. } if branches.len() == 2 && join == "together")));
}

#[test]
fn message_and_signal_end_events_throw_then_end_and_a_job_throw_runs_a_handler() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="how" default="f2" />
    <bpmn:intermediateThrowEvent id="Notify">
      <bpmn:extensionElements><zeebe:taskDefinition type="notify-customer" /></bpmn:extensionElements>
      <bpmn:messageEventDefinition messageRef="m_notice" /></bpmn:intermediateThrowEvent>
    <bpmn:endEvent id="Order_Done"><bpmn:messageEventDefinition messageRef="m_done" /></bpmn:endEvent>
    <bpmn:endEvent id="All_Stop"><bpmn:signalEventDefinition signalRef="s_stop" /></bpmn:endEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="how" />
    <bpmn:sequenceFlow id="f1" sourceRef="how" targetRef="All_Stop">
      <bpmn:conditionExpression>=stop = true</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f2" sourceRef="how" targetRef="Notify" />
    <bpmn:sequenceFlow id="f3" sourceRef="Notify" targetRef="Order_Done" />"#,
        r#"  <bpmn:message id="m_notice" name="Notice" />
  <bpmn:message id="m_done" name="Order done" />
  <bpmn:signal id="s_stop" name="Stop" />"#,
    );
    let def = import(&xml).unwrap();
    let ids: Vec<(&str, &str)> = def
        .steps
        .iter()
        .map(|s| (s.id.as_str(), s.kind.type_name()))
        .collect();
    assert_eq!(
        ids,
        [
            ("how", "exclusive"),
            ("notify", "service"),
            ("order_done", "send"),
            ("order_done_end", "end"),
            ("all_stop", "signal"),
            ("all_stop_end", "end"),
        ]
    );
    let process = crate::definition::compile(def);
    let run = |vars| {
        decide(&process, &InstanceState::default(), &start(vars), ctx())
            .unwrap()
            .iter()
            .map(|e| e.type_name())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        run(serde_json::json!({"stop": true})),
        [
            "InstanceStarted",
            "GatewayDecided",
            "SignalThrown",
            "InstanceCompleted"
        ]
    );
    assert_eq!(
        run(serde_json::json!({"stop": false})),
        ["InstanceStarted", "GatewayDecided", "JobCreated"]
    );
}

#[test]
fn camunda_7_s_retry_time_cycle_is_the_retry_policy() {
    let c7 = |cycle: &str| {
        doc(
            &format!(
                r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="charge" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" camunda:class="com.shop.Charge">
      <bpmn:extensionElements>
        <camunda:failedJobRetryTimeCycle>{cycle}</camunda:failedJobRetryTimeCycle>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="charge" />
    <bpmn:sequenceFlow id="f1" sourceRef="charge" targetRef="end" />
    <bpmn:endEvent id="end" />"#
            ),
            "",
        )
    };
    let def = import(&c7("R5/PT5M")).unwrap();
    let StepKind::Service { retry: Some(r), .. } = &def.steps[0].kind else {
        panic!("{:?}", def.steps[0]);
    };
    assert_eq!(
        (r.max_attempts, r.initial_interval.as_str(), r.backoff),
        (5, "PT5M", 1.0)
    );
    for bad in ["R/PT5M", "PT1M,PT5M", "R0/PT1M"] {
        let e = import(&c7(bad)).unwrap_err();
        assert!(e.message.contains("failedJobRetryTimeCycle"), "{bad}: {e}");
    }
}

#[test]
fn error_end_events_and_a_call_activity_s_error_boundary_round_trip() {
    let child = crate::ProcessDefinition::builder("card_check")
        .exclusive("ok")
        .when("declined == true", "declined")
        .otherwise("fine")
        .error_end("declined", "CardDeclined")
        .end("fine")
        .build()
        .unwrap();
    let parent = crate::ProcessDefinition::builder("checkout")
        .call("check", "card_check")
        .on_error("CardDeclined", "ask_again")
        .end("paid")
        .send("ask_again", "AskForAnotherCard")
        .end("asked")
        .build()
        .unwrap();
    for def in [child, parent] {
        let xml = export(&def).xml;
        assert!(xml.contains("errorEventDefinition"), "{xml}");
        let back = import(&xml).unwrap();
        assert_eq!(back.steps, def.steps);
    }
}

#[test]
fn a_plain_start_beside_a_message_start_to_the_same_step_is_read_as_the_message_start() {
    let two = |second_target: &str| {
        doc(
            &format!(
                r#"
    <bpmn:startEvent id="manual"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:startEvent id="on_order"><bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="m_order" /></bpmn:startEvent>
    <bpmn:sendTask id="confirm" messageRef="m_confirm" />
    <bpmn:sendTask id="other" messageRef="m_confirm" />
    <bpmn:sequenceFlow id="f0" sourceRef="manual" targetRef="confirm" />
    <bpmn:sequenceFlow id="f1" sourceRef="on_order" targetRef="{second_target}" />
    <bpmn:sequenceFlow id="f2" sourceRef="confirm" targetRef="end" />
    <bpmn:sequenceFlow id="f3" sourceRef="other" targetRef="end" />
    <bpmn:endEvent id="end" />"#
            ),
            r#"  <bpmn:message id="m_order" name="Order placed" />
  <bpmn:message id="m_confirm" name="Confirmed" />"#,
        )
    };
    let def = import(&two("confirm")).unwrap_err();
    // "other" cannot be reached when both starts lead to "confirm": the shape is read, and
    // the unreachable task is what validation reports.
    assert!(def.to_string().contains("other"), "{def}");
    let xml = two("confirm").replace(r#"<bpmn:sendTask id="other" messageRef="m_confirm" />"#, "");
    let xml = xml.replace(
        r#"<bpmn:sequenceFlow id="f3" sourceRef="other" targetRef="end" />"#,
        "",
    );
    let ok = import(&xml).unwrap();
    assert_eq!(
        ok.start.as_ref().map(|s| s.message.as_str()),
        Some("Order placed")
    );
    assert_eq!(ok.steps[0].id, "confirm");
    // Starts leading to different steps: the message start begins at its own step.
    let both = import(&two("other")).unwrap();
    assert_eq!(both.steps[0].id, "confirm");
    assert_eq!(
        both.start.as_ref().and_then(|s| s.at.as_deref()),
        Some("other")
    );
    assert_eq!(both.first_step_for(Some("Order placed")), "other");
    assert_eq!(both.first_step_for(None), "confirm");
}

#[test]
fn two_message_starts_each_start_an_instance_at_their_own_step() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="web"><bpmn:outgoing>f0</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="m_web" /></bpmn:startEvent>
    <bpmn:startEvent id="phone"><bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:messageEventDefinition messageRef="m_phone" /></bpmn:startEvent>
    <bpmn:sendTask id="confirm_web" messageRef="m_ok" />
    <bpmn:sendTask id="call_back" messageRef="m_ok" />
    <bpmn:sequenceFlow id="f0" sourceRef="web" targetRef="confirm_web" />
    <bpmn:sequenceFlow id="f1" sourceRef="phone" targetRef="call_back" />
    <bpmn:sequenceFlow id="f2" sourceRef="confirm_web" targetRef="end" />
    <bpmn:sequenceFlow id="f3" sourceRef="call_back" targetRef="end" />
    <bpmn:endEvent id="end" />"#,
        r#"  <bpmn:message id="m_web" name="Web order" />
  <bpmn:message id="m_phone" name="Phone order" />
  <bpmn:message id="m_ok" name="Confirmed" />"#,
    );
    let def = import(&xml).unwrap();
    assert_eq!(def.start.as_ref().unwrap().message, "Web order");
    assert_eq!(def.starts.len(), 1);
    assert_eq!(def.starts[0].message, "Phone order");
    assert_eq!(def.starts[0].at.as_deref(), Some("call_back"));
    let mut messages = def.received_messages();
    messages.sort();
    assert_eq!(messages, ["Phone order", "Web order"]);
    // Each begins where its start event leads.
    let process = crate::definition::compile(def.clone());
    for (message, first) in [("Web order", "confirm_web"), ("Phone order", "call_back")] {
        let events = decide(
            &process,
            &InstanceState::default(),
            &Input::Start {
                business_key: "k".into(),
                variables: serde_json::Map::new(),
                message_id: Some("m".into()),
                parent: None,
                start_message: Some(message.into()),
                trace: None,
            },
            ctx(),
        )
        .unwrap();
        assert!(
            matches!(&events[1], Event::MessageSent { step, .. } if step == first),
            "{message}: {events:?}"
        );
    }
    // Out and back in, the same.
    assert_eq!(import(&export(&def).xml).unwrap(), def);
}

#[test]
fn camunda_7_s_error_code_and_message_variables_are_set_when_the_route_is_taken() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="charge" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" camunda:class="com.shop.Charge" />
    <bpmn:boundaryEvent id="declined" attachedToRef="charge">
      <bpmn:errorEventDefinition errorRef="e_declined" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
          camunda:errorCodeVariable="why" camunda:errorMessageVariable="detail" />
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="charge" />
    <bpmn:sequenceFlow id="f1" sourceRef="charge" targetRef="end" />
    <bpmn:sequenceFlow id="f2" sourceRef="declined" targetRef="sorry" />
    <bpmn:endEvent id="end" />
    <bpmn:endEvent id="sorry" />"#,
        r#"  <bpmn:error id="e_declined" errorCode="CardDeclined" />"#,
    );
    let def = import(&xml).unwrap();
    let StepKind::Service { errors, .. } = &def.steps[0].kind else {
        panic!("{:?}", def.steps[0]);
    };
    assert_eq!(errors[0].code_variable.as_deref(), Some("why"));
    assert_eq!(errors[0].message_variable.as_deref(), Some("detail"));
    // It round-trips through longrun's own export.
    assert_eq!(import(&export(&def).xml).unwrap().steps, def.steps);
    // Taken: the variables hold the code and the handler's message.
    let process = crate::definition::compile(def);
    let mut state = InstanceState::default();
    let started = decide(&process, &state, &start(serde_json::json!({})), ctx()).unwrap();
    for e in &started {
        evolve(&mut state, e);
    }
    let job_id = started
        .iter()
        .find_map(|e| match e {
            Event::JobCreated { job_id, .. } => Some(*job_id),
            _ => None,
        })
        .unwrap();
    let failed = Input::JobFailed {
        job_id,
        error: "the bank said no".into(),
        code: Some("CardDeclined".into()),
    };
    let events = decide(
        &process,
        &state,
        &failed,
        Context {
            next_seq: 10,
            ..ctx()
        },
    )
    .unwrap();
    for e in &events {
        evolve(&mut state, e);
    }
    assert_eq!(state.variables["why"], "CardDeclined");
    assert_eq!(state.variables["detail"], "the bank said no");
    assert_eq!(state.status, crate::machine::Status::Completed);
}

#[test]
fn zeebe_io_mappings_feed_the_job_and_choose_what_its_result_sets() {
    let xml = |io: &str, tag: &str| {
        doc(
            &format!(
                r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:{tag} id="charge" messageRef="m_x">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="charge" />
        <zeebe:ioMapping>{io}</zeebe:ioMapping>
      </bpmn:extensionElements>
    </bpmn:{tag}>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="charge" />
    <bpmn:sequenceFlow id="f1" sourceRef="charge" targetRef="end" />
    <bpmn:endEvent id="end" />"#
            ),
            r#"  <bpmn:message id="m_x" name="X" />"#,
        )
    };
    let io = r#"<zeebe:input source="=order.id" target="orderId" />
        <zeebe:input source="EUR" target="currency" />
        <zeebe:output source="=charge.id" target="paymentId" />"#;
    let def = import(&xml(io, "serviceTask")).unwrap();
    assert_eq!(def.steps[0].inputs.len(), 2);
    assert_eq!(def.steps[0].outputs.len(), 1);
    assert_eq!(import(&export(&def).xml).unwrap().steps, def.steps);
    // The job sees the inputs; the result sets only the mapped output.
    let process = crate::definition::compile(def);
    let mut state = InstanceState::default();
    let started = decide(
        &process,
        &state,
        &start(serde_json::json!({"order": {"id": "o-7"}})),
        ctx(),
    )
    .unwrap();
    let mut job = None;
    for e in &started {
        for fx in crate::machine::effects(&process, uuid::Uuid::nil(), &state, e, ctx().now) {
            if let crate::machine::Effect::Job {
                variables, job_id, ..
            } = fx
            {
                assert_eq!(variables["orderId"], "o-7");
                assert_eq!(variables["currency"], "EUR");
                job = Some(job_id);
            }
        }
        evolve(&mut state, e);
    }
    let done = Input::JobCompleted {
        job_id: job.expect("a job"),
        result: serde_json::json!({"charge": {"id": "c-1"}, "noise": true}),
    };
    for e in decide(
        &process,
        &state,
        &done,
        Context {
            next_seq: 5,
            ..ctx()
        },
    )
    .unwrap()
    {
        evolve(&mut state, &e);
    }
    assert_eq!(state.variables["paymentId"], "c-1");
    assert!(
        state.variables.get("noise").is_none(),
        "only the mapped output"
    );
    assert!(
        state.variables.get("orderId").is_none(),
        "inputs stay the job's"
    );
    // An expression is read (in longrun's spelling); one that does not parse is refused at
    // its mapping; so is a mapping on a send task.
    let def = import(&xml(
        r#"<zeebe:input source="=count(items) * 2 + 1" target="c" /><zeebe:input source="=status = &quot;open&quot;" target="d" />"#,
        "serviceTask",
    ))
    .unwrap();
    let inputs = &def.step("charge").unwrap().inputs;
    let vars = serde_json::json!({"items": [1, 2, 3], "status": "open"});
    let got = crate::definition::map_all(
        inputs,
        vars.as_object().unwrap(),
        &serde_json::Map::new(),
        None,
    );
    assert_eq!(got["c"], 7);
    assert_eq!(got["d"], true);
    let e = import(&xml(
        r#"<zeebe:input source="=a +" target="c" />"#,
        "serviceTask",
    ))
    .unwrap_err();
    assert!(e.message.contains("source `=a +`: column"), "{e}");
    let e = import(&xml(
        r#"<zeebe:input source="=a" target="c" />"#,
        "sendTask",
    ))
    .unwrap_err();
    assert!(e.message.contains("ioMapping on a"), "{e}");
}

#[test]
fn feel_functions_and_dates_in_a_modelers_conditions_import_and_run() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="split" default="f2" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="split" />
    <bpmn:sequenceFlow id="f1" sourceRef="split" targetRef="rush">
      <bpmn:conditionExpression>=count(items) &gt;= 2 and starts with(upper case(country), "D") and date and time(placed) + duration("P7D") &lt; now()</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="normal" />
    <bpmn:endEvent id="rush" />
    <bpmn:endEvent id="normal" />"#,
        "",
    );
    let def = import(&xml).unwrap();
    let process = crate::definition::compile(def.clone());
    // ctx() is 2023-11-14: an order placed more than 7 days before is rushed.
    for (placed, end) in [
        ("2023-11-01T00:00:00Z", "rush"),
        ("2023-11-13T00:00:00Z", "normal"),
    ] {
        let events = decide(
            &process,
            &InstanceState::default(),
            &start(serde_json::json!({"items": [1, 2], "country": "de", "placed": placed})),
            ctx(),
        )
        .unwrap();
        assert!(
            matches!(events.last(), Some(Event::InstanceCompleted { step }) if step == end),
            "{placed}: {events:?}"
        );
    }
    // It goes out and comes back the same.
    assert_eq!(import(&export(&def).xml).unwrap(), def);
}

#[test]
fn a_non_interrupting_timer_boundary_leads_to_a_path_of_its_own() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:receiveTask id="wait_docs" messageRef="m_docs" />
    <bpmn:boundaryEvent id="daily" attachedToRef="wait_docs" cancelActivity="false">
      <bpmn:timerEventDefinition><bpmn:timeCycle>R3/P1D</bpmn:timeCycle></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:serviceTask id="nudge"><bpmn:extensionElements><zeebe:taskDefinition type="nudge" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="nudged" />
    <bpmn:endEvent id="end" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="wait_docs" />
    <bpmn:sequenceFlow id="f1" sourceRef="wait_docs" targetRef="end" />
    <bpmn:sequenceFlow id="f2" sourceRef="daily" targetRef="nudge" />
    <bpmn:sequenceFlow id="f3" sourceRef="nudge" targetRef="nudged" />"#,
        r#"  <bpmn:message id="m_docs" name="Documents" />"#,
    );
    let def = import(&xml).unwrap();
    let b = &def.step("wait_docs").unwrap().boundary[0];
    assert!(!b.interrupting);
    assert_eq!(b.next.as_deref(), Some("nudge"));
    assert_eq!(import(&export(&def).xml).unwrap(), def);
}

#[test]
fn a_multi_instance_subprocess_imports_and_round_trips() {
    let xml = doc(
        r#"
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:subProcess id="per_line">
      <bpmn:multiInstanceLoopCharacteristics isSequential="true">
        <bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="=lines" inputElement="line" /></bpmn:extensionElements>
      </bpmn:multiInstanceLoopCharacteristics>
      <bpmn:startEvent id="inner_start"><bpmn:outgoing>i0</bpmn:outgoing></bpmn:startEvent>
      <bpmn:serviceTask id="pick"><bpmn:extensionElements><zeebe:taskDefinition type="pick" /></bpmn:extensionElements></bpmn:serviceTask>
      <bpmn:endEvent id="picked" />
      <bpmn:sequenceFlow id="i0" sourceRef="inner_start" targetRef="pick" />
      <bpmn:sequenceFlow id="i1" sourceRef="pick" targetRef="picked" />
    </bpmn:subProcess>
    <bpmn:endEvent id="end" />
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="per_line" />
    <bpmn:sequenceFlow id="f1" sourceRef="per_line" targetRef="end" />"#,
        "",
    );
    let def = import(&xml).unwrap();
    let m = def.step("per_line").unwrap().multi.clone().unwrap();
    assert!(m.sequential && m.collection == "lines");
    assert_eq!(import(&export(&def).xml).unwrap(), def);
}

#[test]
fn a_multi_instance_send_task_round_trips() {
    let def = crate::definition::ProcessDefinition::builder("order")
        .send("fetch", "FetchLine")
        .to("inventory")
        .for_each(crate::definition::MultiInstance::over("lines").element("line"))
        .end("done")
        .build()
        .unwrap();
    let xml = export(&def).xml;
    assert!(
        xml.contains("<bpmn:multiInstanceLoopCharacteristics"),
        "{xml}"
    );
    assert_eq!(import(&xml).unwrap(), def);
}

#[test]
fn milestones_round_trip_through_bpmn() {
    let def = crate::definition::ProcessDefinition::builder("order")
        .parallel("placed", ["pay", "fetch"])
        .milestone("order placed")
        .receive("pay", "PaymentReceived")
        .milestone("paid")
        .next("both")
        .service("fetch", "fetch")
        .milestone("fetched")
        .next("both")
        .join("both")
        .wait_for("cool_off", "PT1H")
        .milestone("cooled")
        .end("done")
        .milestone("completed")
        .build()
        .unwrap();
    let xml = export(&def).xml;
    assert!(xml.contains("longrun:milestone=\"order placed\""), "{xml}");
    assert_eq!(import(&xml).unwrap(), def);
}
