//! The pure core: one transition (decide + evolve) and definition parsing with validation.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::{json, Map};
use uuid::Uuid;

use longrun::machine::{decide, evolve, Context, Input, InstanceState, Wait};
use longrun::ProcessDefinition;

const ORDER: &str = include_str!("../examples/definitions/order.json");

fn three_steps() -> ProcessDefinition {
    ProcessDefinition::builder("bench")
        .service("one", "noop")
        .service("two", "noop")
        .service("three", "noop")
        .end("done")
        .build()
        .unwrap()
}

fn transitions(c: &mut Criterion) {
    let def = longrun::definition::compile(three_steps());
    let ctx = Context {
        instance_id: Uuid::from_u128(1),
        next_seq: 1,
        now: chrono::Utc::now(),
    };
    let mut vars = Map::new();
    vars.insert("orderId".into(), json!("o-1"));
    let start = Input::Start {
        business_key: "o-1".into(),
        variables: vars,
        message_id: None,
        parent: None,
        start_message: None,
        trace: None,
    };
    c.bench_function("decide+evolve: start to first job", |b| {
        b.iter(|| {
            let mut state = InstanceState::default();
            for e in decide(&def, black_box(&state.clone()), &start, ctx).unwrap() {
                evolve(&mut state, &e);
            }
            state
        })
    });
    let mut waiting = InstanceState::default();
    for e in decide(&def, &waiting.clone(), &start, ctx).unwrap() {
        evolve(&mut waiting, &e);
    }
    let Some(Wait::Job { job_id, .. }) = waiting.waits.first().cloned() else {
        panic!("waits for a job")
    };
    let done = Input::JobCompleted {
        job_id,
        result: json!({"ok": true}),
    };
    c.bench_function("decide+evolve: job completed to next job", |b| {
        b.iter(|| {
            let mut state = waiting.clone();
            for e in decide(&def, black_box(&waiting), &done, ctx).unwrap() {
                evolve(&mut state, &e);
            }
            state
        })
    });
}

fn definitions(c: &mut Criterion) {
    c.bench_function("parse+validate order.json", |b| {
        b.iter(|| ProcessDefinition::from_json(black_box(ORDER)).unwrap())
    });
}

criterion_group!(benches, transitions, definitions);
criterion_main!(benches);
