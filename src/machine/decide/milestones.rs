//! Milestones in a decision: a step marked as one reaches it as it completes.

use super::*;

impl Decision<'_> {
    /// The step `e` completes, for milestones: a job's, a task's, a child's, a subprocess's,
    /// a multi-instance step's (not each element's), a timer step's, or a receive's, a
    /// signal wait's or an event gateway's own message (not a boundary one, which ends the
    /// wait another way).
    pub(super) fn completes(&self, e: &Event) -> Option<String> {
        let step = match e {
            Event::JobCompleted { step, .. }
            | Event::TaskCompleted { step, .. }
            | Event::ChildCompleted { step, .. }
            | Event::SubprocessCompleted { step }
            | Event::MultiInstanceCompleted { step, .. } => step,
            Event::TimerFired { step, .. } => match self.def.step(step).map(|s| &s.kind) {
                Some(StepKind::Timer { .. }) => step,
                _ => return None,
            },
            Event::MessageCorrelated { step, name, .. } => {
                match self.def.step(step).map(|s| &s.kind) {
                    Some(StepKind::Receive { message, .. }) if message == name => step,
                    Some(StepKind::WaitSignal { signal, .. })
                        if name.strip_prefix("signal:") == Some(signal.as_str()) =>
                    {
                        step
                    }
                    Some(StepKind::EventGateway { .. }) => step,
                    _ => return None,
                }
            }
            _ => return None,
        };
        (!step.contains('#')).then(|| step.clone())
    }

    /// Step `step` completed: if it is a milestone, say so (an outbox message publishes it).
    pub(super) fn reached(&mut self, step: &str) {
        if step.contains('#') {
            return;
        }
        if let Some(milestone) = self.def.step(step).and_then(|s| s.milestone.clone()) {
            let message_id = self.next_id();
            self.emit(Event::MilestoneReached {
                step: step.to_string(),
                milestone,
                message_id,
            });
        }
    }
}
