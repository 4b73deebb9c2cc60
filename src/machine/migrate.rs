//! Moving a running instance to another version of its process: a pure check of one instance
//! against a plan, which yields the `Migrated` event or says why the instance cannot move.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Event, InstanceState, Status, TimerKind, Wait};
use crate::definition::{ProcessDefinition, StepKind};

/// How to move instances from one version to another.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MigrationPlan {
    /// Step ids of the old version mapped to ids of the new one; a step not listed keeps its
    /// id.
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
    /// Variables to set on every instance moved.
    #[serde(default)]
    pub set: Map<String, Value>,
}

impl MigrationPlan {
    /// Check the plan against both versions: every mapped step must exist on its side.
    pub fn check(&self, from: &ProcessDefinition, to: &ProcessDefinition) -> Result<(), String> {
        for (a, b) in &self.mapping {
            if from.step(a).is_none() {
                return Err(format!(
                    "--map {a}={b}: the old version has no step \"{a}\""
                ));
            }
            if to.step(b).is_none() {
                return Err(format!(
                    "--map {a}={b}: the new version has no step \"{b}\""
                ));
            }
        }
        Ok(())
    }

    fn target<'a>(&'a self, step: &'a str) -> &'a str {
        self.mapping.get(step).map(String::as_str).unwrap_or(step)
    }
}

fn kind(def: &ProcessDefinition, step: &str) -> Option<&'static str> {
    def.step(step).map(|s| s.kind.type_name())
}

/// Check one instance against a plan from version `from_version` (`from`) to `to_version`
/// (`to`): the `Migrated` event that moves it, or why it cannot move.
pub fn plan_migration(
    from: &ProcessDefinition,
    to: &ProcessDefinition,
    from_version: i32,
    to_version: i32,
    state: &InstanceState,
    plan: &MigrationPlan,
    by: &str,
) -> Result<Event, String> {
    if state.status != Status::Running {
        return Err(format!("it is {}, not running", state.status.as_str()));
    }
    if state.compensating.is_some() {
        return Err("it is undoing completed steps; let the compensation finish".into());
    }
    let lacks = |step: &str, what: &str| {
        let t = plan.target(step);
        if t == step {
            format!("{what} at step {step}, which v{to_version} lacks (map it: --map {step}=STEP)")
        } else {
            format!("{what} at step {step}, mapped to {t}, which v{to_version} lacks")
        }
    };
    let mut steps = BTreeMap::new();
    let mut handlers = BTreeMap::new();
    for w in &state.waits {
        let step = w.step();
        let target = plan.target(step);
        let Some(new) = to.step(target) else {
            return Err(lacks(step, "it waits"));
        };
        let old = from.step(step);
        let expected = match w {
            Wait::Job { .. } => "service",
            Wait::Message { .. } => "receive",
            Wait::Timer { .. } => "timer",
            Wait::Gateway { .. } => "event_gateway",
            Wait::Child { .. } => "call",
            Wait::Task { .. } => "user_task",
            Wait::Scope { .. } => "subprocess",
            Wait::Armed { .. } => "event_subprocess",
        };
        if new.kind.type_name() != expected {
            return Err(format!(
                "it waits at {expected} step {step}, but {target} is a {} step in v{to_version}",
                new.kind.type_name()
            ));
        }
        match (w, &new.kind) {
            (Wait::Message { name, .. }, StepKind::Receive { message, .. }) if name != message => {
                return Err(format!(
                    "it waits at {step} for {name}, but {target} in v{to_version} waits for {message}"
                ));
            }
            (Wait::Job { handler, .. }, StepKind::Service { handler: h, .. }) if handler != h => {
                handlers.insert(target.to_string(), h.clone());
            }
            _ => {}
        }
        // Running boundary (and gateway) timers refer to their event by position: the events
        // must be the same on both sides.
        let indexed = state
            .timers
            .iter()
            .any(|t| t.step == step && matches!(t.kind, TimerKind::Boundary { .. }));
        if indexed {
            let same = match (old.map(|o| &o.kind), &new.kind) {
                (
                    Some(StepKind::EventGateway { events: a, .. }),
                    StepKind::EventGateway { events: b, .. },
                ) => a == b,
                _ => old.is_some_and(|o| o.boundary == new.boundary),
            };
            if !same {
                return Err(format!(
                    "its boundary timers at {step} run, and {target}'s boundary events differ in v{to_version}"
                ));
            }
        }
        if target != step {
            steps.insert(step.to_string(), target.to_string());
        }
    }
    for join in state.joins.keys() {
        let target = plan.target(join);
        if kind(to, target) != Some("join") {
            return Err(format!(
                "a branch waits at join {join}: it is inside a parallel branch that v{to_version} lacks"
            ));
        }
        if target != join {
            steps.insert(join.clone(), target.to_string());
        }
    }
    for done in &state.compensable {
        let target = plan.target(done);
        if to
            .step(target)
            .and_then(|s| s.compensate.as_ref())
            .is_none()
        {
            return Err(format!(
                "completed step {done} can be undone, but {target} in v{to_version} has no compensation"
            ));
        }
        if target != done {
            steps.insert(done.clone(), target.to_string());
        }
    }
    for step in state.passes.keys() {
        let target = plan.target(step);
        if target != step && to.step(target).is_some() {
            steps.insert(step.clone(), target.to_string());
        }
    }
    Ok(Event::Migrated {
        from_version,
        to_version,
        steps,
        handlers,
        set: plan.set.clone(),
        by: by.to_string(),
    })
}
