//! Modeler shapes, second group: end events (terminate, message, signal, error, compensation
//! throws), user tasks as Zeebe and Camunda 7 draw them, signal events, inclusive gateways,
//! retry cycles and several start events. Helpers come from `modeler_tests`.

use super::modeler_tests::{ctx, doc, start};
use super::*;
use crate::definition::StepKind;
use crate::machine::{decide, Event, Input, InstanceState};

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
