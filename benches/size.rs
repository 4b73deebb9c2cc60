//! What a definition's size costs: deploying (validate and compile) and deciding a start, for
//! definitions of 10, 100, 1,000 and 5,000 steps. A start that waits at its third step should
//! cost the same whatever the size; a start that runs through every step of a chain costs in
//! proportion to the steps it runs.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use serde_json::Map;
use uuid::Uuid;

use longrun::definition::compile;
use longrun::machine::{decide, Context, Input, InstanceState};
use longrun::ProcessDefinition;

const SIZES: [usize; 4] = [10, 100, 1_000, 5_000];

/// Two sends, a wait for a job, then sends to the end: an instance runs three steps at start.
fn waits_early(n: usize) -> ProcessDefinition {
    let mut b = ProcessDefinition::builder("early")
        .send("s0", "M")
        .send("s1", "M")
        .service("work", "h");
    for i in 3..n - 1 {
        b = b.send(format!("s{i}"), "M");
    }
    b.end("done").build().unwrap()
}

/// Sends only: a start runs through every step.
fn chain(n: usize) -> ProcessDefinition {
    let mut b = ProcessDefinition::builder("chain").send("s0", "M");
    for i in 1..n - 1 {
        b = b.send(format!("s{i}"), "M");
    }
    b.end("done").build().unwrap()
}

fn start() -> Input {
    Input::Start {
        business_key: "k".into(),
        variables: Map::new(),
        message_id: None,
        parent: None,
        start_message: None,
        trace: None,
    }
}

fn ctx() -> Context {
    Context {
        instance_id: Uuid::from_u128(7),
        next_seq: 1,
        now: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    }
}

fn sizes(c: &mut Criterion) {
    let mut g = c.benchmark_group("definition size");
    g.sample_size(10);
    for n in SIZES {
        let early = waits_early(n);
        let json = early.to_json();
        g.bench_with_input(
            BenchmarkId::new("deploy: parse, validate, compile", n),
            &json,
            |b, json| b.iter(|| compile(ProcessDefinition::from_json(black_box(json)).unwrap())),
        );
        let p = compile(early);
        g.bench_with_input(
            BenchmarkId::new("decide start, waits at step 3", n),
            &p,
            |b, p| b.iter(|| decide(p, &InstanceState::default(), &start(), ctx()).unwrap()),
        );
        let p = compile(chain(n));
        g.bench_with_input(
            BenchmarkId::new("decide start, runs every step", n),
            &p,
            |b, p| b.iter(|| decide(p, &InstanceState::default(), &start(), ctx()).unwrap()),
        );
    }
    g.finish();
}

criterion_group!(benches, sizes);
criterion_main!(benches);
