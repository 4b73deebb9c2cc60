//! What every event is called and which step it concerns.

use super::Event;

impl Event {
    /// The event's type name (`InstanceStarted`, ...), stored in `events.event_type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::InstanceStarted { .. } => "InstanceStarted",
            Event::JobCreated { .. } => "JobCreated",
            Event::JobCompleted { .. } => "JobCompleted",
            Event::JobFailed { .. } => "JobFailed",
            Event::MessageSent { .. } => "MessageSent",
            Event::MessageAwaited { .. } => "MessageAwaited",
            Event::MessageCorrelated { .. } => "MessageCorrelated",
            Event::InstanceCompleted { .. } => "InstanceCompleted",
            Event::TimerScheduled { .. } => "TimerScheduled",
            Event::TimerFired { .. } => "TimerFired",
            Event::TimerCancelled { .. } => "TimerCancelled",
            Event::WaitInterrupted { .. } => "WaitInterrupted",
            Event::BoundaryMessageAwaited { .. } => "BoundaryMessageAwaited",
            Event::BoundaryMessageReceived { .. } => "BoundaryMessageReceived",
            Event::MilestoneReached { .. } => "MilestoneReached",
            Event::JobTimedOut { .. } => "JobTimedOut",
            Event::JobRetryScheduled { .. } => "JobRetryScheduled",
            Event::IncidentRaised { .. } => "IncidentRaised",
            Event::IncidentResolved { .. } => "IncidentResolved",
            Event::InstanceCancelled { .. } => "InstanceCancelled",
            Event::BusinessErrorCaught { .. } => "BusinessErrorCaught",
            Event::StepCompensable { .. } => "StepCompensable",
            Event::InstancePaused { .. } => "InstancePaused",
            Event::InstanceResumed { .. } => "InstanceResumed",
            Event::CompensationStarted { .. } => "CompensationStarted",
            Event::CompensationFinished { .. } => "CompensationFinished",
            Event::StepCompensated { .. } => "StepCompensated",
            Event::InstanceFailed { .. } => "InstanceFailed",
            Event::StepEntered { .. } => "StepEntered",
            Event::GatewayDecided { .. } => "GatewayDecided",
            Event::ParallelForked { .. } => "ParallelForked",
            Event::JoinArrived { .. } => "JoinArrived",
            Event::BranchEnded { .. } => "BranchEnded",
            Event::GatewayEntered { .. } => "GatewayEntered",
            Event::ChildStarted { .. } => "ChildStarted",
            Event::ChildCompleted { .. } => "ChildCompleted",
            Event::SubprocessEntered { .. } => "SubprocessEntered",
            Event::EventSubprocessArmed { .. } => "EventSubprocessArmed",
            Event::EventSubprocessStarted { .. } => "EventSubprocessStarted",
            Event::MultiInstanceStarted { .. } => "MultiInstanceStarted",
            Event::ElementCompleted { .. } => "ElementCompleted",
            Event::MultiInstanceCompleted { .. } => "MultiInstanceCompleted",
            Event::SubprocessCompleted { .. } => "SubprocessCompleted",
            Event::Migrated { .. } => "Migrated",
            Event::SignalThrown { .. } => "SignalThrown",
            Event::InclusiveForked { .. } => "InclusiveForked",
            Event::ErrorThrown { .. } => "ErrorThrown",
            Event::TaskCreated { .. } => "TaskCreated",
            Event::TaskClaimed { .. } => "TaskClaimed",
            Event::TaskUnclaimed { .. } => "TaskUnclaimed",
            Event::TaskAssigned { .. } => "TaskAssigned",
            Event::TaskUpdated { .. } => "TaskUpdated",
            Event::TaskCompleted { .. } => "TaskCompleted",
        }
    }

    /// The step the event concerns, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Event::InstanceStarted { .. }
            | Event::InstanceCancelled { .. }
            | Event::CompensationStarted { .. }
            | Event::CompensationFinished { .. }
            | Event::InstancePaused { .. }
            | Event::InstanceResumed { .. }
            | Event::Migrated { .. } => None,
            Event::JobCreated { step, .. }
            | Event::JobCompleted { step, .. }
            | Event::JobFailed { step, .. }
            | Event::MessageSent { step, .. }
            | Event::MessageAwaited { step, .. }
            | Event::MessageCorrelated { step, .. }
            | Event::InstanceCompleted { step }
            | Event::TimerScheduled { step, .. }
            | Event::TimerFired { step, .. }
            | Event::TimerCancelled { step, .. }
            | Event::WaitInterrupted { step, .. }
            | Event::BoundaryMessageAwaited { step, .. }
            | Event::BoundaryMessageReceived { step, .. }
            | Event::MilestoneReached { step, .. }
            | Event::JobTimedOut { step, .. }
            | Event::JobRetryScheduled { step, .. }
            | Event::IncidentRaised { step, .. }
            | Event::IncidentResolved { step, .. }
            | Event::BusinessErrorCaught { step, .. }
            | Event::StepCompensable { step }
            | Event::StepCompensated { step }
            | Event::InstanceFailed { step, .. }
            | Event::StepEntered { step, .. }
            | Event::GatewayDecided { step, .. }
            | Event::ParallelForked { step, .. }
            | Event::JoinArrived { step, .. }
            | Event::BranchEnded { step }
            | Event::GatewayEntered { step, .. }
            | Event::ChildStarted { step, .. }
            | Event::ChildCompleted { step, .. }
            | Event::SubprocessEntered { step }
            | Event::EventSubprocessArmed { step }
            | Event::EventSubprocessStarted { step }
            | Event::MultiInstanceStarted { step, .. }
            | Event::ElementCompleted { step, .. }
            | Event::MultiInstanceCompleted { step, .. }
            | Event::SubprocessCompleted { step }
            | Event::SignalThrown { step, .. }
            | Event::InclusiveForked { step, .. }
            | Event::ErrorThrown { step, .. }
            | Event::TaskCreated { step, .. }
            | Event::TaskClaimed { step, .. }
            | Event::TaskUnclaimed { step, .. }
            | Event::TaskAssigned { step, .. }
            | Event::TaskUpdated { step, .. }
            | Event::TaskCompleted { step, .. } => Some(step),
        }
    }
}
