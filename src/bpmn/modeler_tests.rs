//! Shapes real modelers draw that longrun used to get wrong: an exclusive gateway used as a
//! merge, a call activity naming its callee as the modeler wrote it, message names in words,
//! a process calling itself, and problems reported at their element.

use super::*;
use crate::definition::StepKind;
use crate::machine::{decide, evolve, Context, Event, Input, InstanceState};

/// A modeler-style document: `body` inside the executable process, `extra` beside it.
pub(super) fn doc(body: &str, extra: &str) -> String {
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

pub(super) fn start(variables: serde_json::Value) -> Input {
    Input::Start {
        business_key: "k".into(),
        variables: variables.as_object().unwrap().clone(),
        message_id: None,
        parent: None,
        start_message: None,
        trace: None,
    }
}

pub(super) fn ctx() -> Context {
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

pub(super) fn caller(process_id: &str) -> String {
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

pub(super) fn service(definition: &str) -> String {
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
