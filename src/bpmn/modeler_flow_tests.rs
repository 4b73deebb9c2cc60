//! Modeler shapes, third group: what a modeler's mappings, error variables, FEEL functions and
//! dates, non-interrupting boundaries, multi-instance elements and milestones become. Helpers
//! come from `modeler_tests`.

use super::modeler_tests::{ctx, doc, start};
use super::*;
use crate::definition::StepKind;
use crate::machine::{decide, evolve, Context, Event, Input, InstanceState};

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
