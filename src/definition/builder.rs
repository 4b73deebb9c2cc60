//! A fluent builder for process definitions, checked when built.
//!
//! ```
//! use longrun::ProcessDefinition;
//! let def = ProcessDefinition::builder("order")
//!     .start_on_message("OrderPlaced")
//!     .send("retrieve_payment", "RetrievePayment").to("payment")
//!     .receive("payment_received", "PaymentReceived")
//!     .service("ship", "ship_goods").output("shipment")
//!     .end("done")
//!     .build()
//!     .unwrap();
//! assert_eq!(def.steps.len(), 4);
//! ```
//!
//! Steps follow one another in the order they are added; `.next("id")` overrides that.

use super::{
    Boundary, BoundaryEvent, Compensation, Error, ErrorRoute, GatewayEvent, Output,
    ProcessDefinition, RetryPolicy, Route, Step, StepKind, TimerSpec,
};
use crate::expr::Type;

/// Builds a [`ProcessDefinition`]; see the module docs.
#[derive(Debug, Clone)]
pub struct ProcessBuilder {
    pub(super) def: ProcessDefinition,
    /// Which steps had `next` set explicitly.
    pub(super) explicit_next: Vec<bool>,
    /// The step the [`StepBuilder`] refines (the last one added at this level).
    pub(super) current: usize,
}

/// The builder positioned on the step just added: refine it, or add the next one.
#[derive(Debug, Clone)]
pub struct StepBuilder {
    pub(super) inner: ProcessBuilder,
}

impl ProcessBuilder {
    pub(super) fn new(id: impl Into<String>) -> Self {
        ProcessBuilder {
            def: ProcessDefinition {
                process: id.into(),
                start: None,
                starts: Vec::new(),
                start_signal: None,
                start_timer: None,
                retry: None,
                variables: Default::default(),
                unique_business_key: None,
                retention: None,
                steps: Vec::new(),
            },
            explicit_next: Vec::new(),
            current: 0,
        }
    }

    /// Keep the business key unique among running instances: a second start with a running
    /// instance's key gets that instance or an error, as `policy` says.
    pub fn unique_business_key(mut self, policy: super::UniqueKey) -> Self {
        self.def.unique_business_key = Some(policy);
        self
    }

    /// Keep an ended instance's history this long (ISO 8601, e.g. `P30D`) before retention
    /// removes it, instead of the engine's default.
    pub fn retention(mut self, period: impl Into<String>) -> Self {
        self.def.retention = Some(period.into());
        self
    }

    /// The retry policy of service steps that set none.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.def.retry = Some(policy);
        self
    }

    /// Start an instance by itself on this timer (see [`super::StartTimer`]).
    pub fn start_on_timer(mut self, timer: super::StartTimer) -> Self {
        self.def.start_timer = Some(timer);
        self
    }

    pub(super) fn push(mut self, id: impl Into<String>, kind: StepKind) -> StepBuilder {
        let id = id.into();
        // The step before at this level (a subprocess's steps come after it).
        let before = self.def.steps.iter().rposition(|s| {
            s.within.is_none() && !matches!(s.kind, StepKind::EventSubprocess { .. })
        });
        if let Some(prev) = before.map(|i| &mut self.def.steps[i]) {
            let routed = matches!(
                prev.kind,
                StepKind::End
                    | StepKind::Terminate
                    | StepKind::Error { .. }
                    | StepKind::Exclusive { .. }
                    | StepKind::Inclusive { .. }
                    | StepKind::Parallel { .. }
                    | StepKind::EventGateway { .. }
            );
            if !self.explicit_next[before.unwrap_or_default()] && !routed {
                prev.next = Some(id.clone());
            }
        }
        self.def.steps.push(Step {
            id,
            kind,
            next: None,
            boundary: Vec::new(),
            compensate: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            within: None,
            multi: None,
            milestone: None,
        });
        self.explicit_next.push(false);
        self.current = self.def.steps.len() - 1;
        StepBuilder { inner: self }
    }

    /// A service task run by the handler registered as `handler`.
    pub fn service(self, id: impl Into<String>, handler: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::Service {
                handler: handler.into(),
                output: Output::Merge,
                timeout: None,
                retry: None,
                errors: Vec::new(),
                headers: Default::default(),
            },
        )
    }

    /// Send `message`: an event unless [`StepBuilder::to`] names a recipient.
    pub fn send(self, id: impl Into<String>, message: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::Send {
                message: message.into(),
                to: None,
                key: None,
                payload: None,
            },
        )
    }

    /// Wait for `message`, correlated by the business key unless [`StepBuilder::key`] says
    /// otherwise.
    pub fn receive(self, id: impl Into<String>, message: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::Receive {
                message: message.into(),
                key: None,
                output: Output::Merge,
            },
        )
    }

    /// An end step.
    pub fn end(self, id: impl Into<String>) -> StepBuilder {
        self.push(id, StepKind::End)
    }

    /// A terminate end step: the instance completes here, ending every other branch.
    pub fn terminate(self, id: impl Into<String>) -> StepBuilder {
        self.push(id, StepKind::Terminate)
    }

    /// A step that undoes the completed steps that declare a compensation, newest first.
    pub fn compensate_all(self, id: impl Into<String>) -> StepBuilder {
        self.push(id, StepKind::Compensate)
    }

    /// A timer step that waits for an ISO 8601 duration (`PT30S`, `P14D`).
    pub fn wait_for(self, id: impl Into<String>, duration: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::Timer {
                timer: TimerSpec::After(duration.into()),
            },
        )
    }

    /// A timer step that waits until the RFC 3339 date-time held by a variable.
    pub fn wait_until(self, id: impl Into<String>, variable: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::Timer {
                timer: TimerSpec::Until(variable.into()),
            },
        )
    }

    /// Declare a variable's type: gateway conditions are type-checked against the
    /// declarations at build and deploy (see [`crate::expr`]).
    pub fn variable(mut self, path: impl Into<String>, ty: Type) -> Self {
        self.def.variables.insert(path.into(), ty);
        self
    }

    /// Add an exclusive gateway; give it routes with [`StepBuilder::when`] and a default with
    /// [`StepBuilder::otherwise`].
    pub fn exclusive(self, id: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::Exclusive {
                routes: Vec::new(),
                default: None,
            },
        )
    }

    /// Add a parallel fork whose branches start at the given steps.
    pub fn parallel<I, S>(self, id: impl Into<String>, branches: I) -> StepBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.push(
            id,
            StepKind::Parallel {
                branches: branches.into_iter().map(Into::into).collect(),
            },
        )
    }

    /// Add a parallel join: it goes on once a branch arrived on each path into it.
    pub fn join(self, id: impl Into<String>) -> StepBuilder {
        self.push(id, StepKind::Join)
    }

    /// Add an event-based gateway; give it events with [`StepBuilder::on_message`] and
    /// [`StepBuilder::on_timer`].
    pub fn event_gateway(self, id: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::EventGateway {
                key: None,
                events: Vec::new(),
            },
        )
    }

    /// Add a call activity that starts `process` and waits for it to end.
    pub fn call(self, id: impl Into<String>, process: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::Call {
                process: process.into(),
                input: None,
                output: Output::Merge,
                errors: Vec::new(),
            },
        )
    }

    /// Validate and return the definition.
    pub fn build(self) -> Result<ProcessDefinition, Error> {
        self.def.validate()?;
        Ok(self.def)
    }
}

impl StepBuilder {
    pub(super) fn last(&mut self) -> &mut Step {
        &mut self.inner.def.steps[self.inner.current]
    }

    /// The recipient of a send step, making its message a command.
    ///
    /// # Panics
    /// If the current step is not a send step (a programming error).
    pub fn to(mut self, recipient: impl Into<String>) -> Self {
        match &mut self.last().kind {
            StepKind::Send { to, .. } => *to = Some(recipient.into()),
            other => panic!("`to` applies to send steps, not {}", other.type_name()),
        }
        self
    }

    /// The variable path holding the message key (send) or correlation key (receive).
    ///
    /// # Panics
    /// If the current step is neither send nor receive.
    pub fn key(mut self, path: impl Into<String>) -> Self {
        match &mut self.last().kind {
            StepKind::Send { key, .. }
            | StepKind::Receive { key, .. }
            | StepKind::EventGateway { key, .. } => *key = Some(path.into()),
            other => panic!(
                "`key` applies to send and receive steps, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// The variables sent as payload of a send step.
    ///
    /// # Panics
    /// If the current step is not a send step.
    pub fn payload<I, S>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        match &mut self.last().kind {
            StepKind::Send { payload, .. } | StepKind::Call { input: payload, .. } => {
                *payload = Some(vars.into_iter().map(Into::into).collect())
            }
            other => panic!("`payload` applies to send steps, not {}", other.type_name()),
        }
        self
    }

    /// Store the result of a service or receive step under this variable.
    ///
    /// # Panics
    /// If the current step is neither service nor receive.
    pub fn output(mut self, var: impl Into<String>) -> Self {
        match &mut self.last().kind {
            StepKind::Service { output, .. }
            | StepKind::Receive { output, .. }
            | StepKind::WaitSignal { output, .. }
            | StepKind::Call { output, .. } => *output = Output::Variable(var.into()),
            StepKind::EventGateway { events, .. } => match events.last_mut() {
                Some(e) if matches!(e.on, BoundaryEvent::Message(_)) => {
                    e.output = Output::Variable(var.into())
                }
                _ => panic!("`output` on an event gateway follows `on_message`"),
            },
            other => panic!(
                "`output` applies to service and receive steps, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// Fail a service step whose handler takes longer than this ISO 8601 duration.
    ///
    /// # Panics
    /// If the current step is not a service step.
    pub fn timeout(mut self, duration: impl Into<String>) -> Self {
        match &mut self.last().kind {
            StepKind::Service { timeout, .. } => *timeout = Some(duration.into()),
            other => panic!(
                "`timeout` applies to service steps, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// A static setting handed to this service step's handler with each job
    /// ([`crate::JobContext::headers`]; BPMN's task headers).
    ///
    /// # Panics
    /// If the current step is not a service step.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        match &mut self.last().kind {
            StepKind::Service { headers, .. } => {
                headers.insert(key.into(), value.into());
            }
            other => panic!(
                "`header` applies to service steps, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// Retry this service step's failed attempts under `policy`.
    ///
    /// # Panics
    /// If the current step is not a service step.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        match &mut self.last().kind {
            StepKind::Service { retry, .. } => *retry = Some(policy),
            other => panic!(
                "`retry` applies to service steps, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// Mark this step as a milestone of the coarse view (see [`Step::milestone`]).
    pub fn milestone(mut self, name: impl Into<String>) -> Self {
        self.last().milestone = Some(name.into());
        self
    }

    /// Undo this (service or send) step, if the instance is cancelled after it completed.
    pub fn compensate(mut self, how: Compensation) -> Self {
        self.last().compensate = Some(how);
        self
    }

    /// Route the business error `code` raised by this service step's handler to `next`.
    ///
    /// # Panics
    /// If the current step is not a service step.
    pub fn on_error(mut self, code: impl Into<String>, next: impl Into<String>) -> Self {
        match &mut self.last().kind {
            StepKind::Service { errors, .. }
            | StepKind::Call { errors, .. }
            | StepKind::Subprocess { errors, .. } => errors.push(ErrorRoute::new(code, next)),
            other => panic!(
                "`on_error` applies to service, call and subprocess steps, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// An interrupting boundary timer: if the step still waits after `duration`, the wait
    /// ends and the instance goes on at `next`.
    pub fn timeout_after(mut self, duration: impl Into<String>, next: impl Into<String>) -> Self {
        self.last().boundary.push(Boundary {
            on: BoundaryEvent::Timer(TimerSpec::After(duration.into())),
            interrupting: true,
            next: Some(next.into()),
            send: None,
            assign: None,
        });
        self
    }

    /// An interrupting boundary timer of any kind (`After`, or `Until` a date variable): if
    /// the step still waits when it fires, the wait ends and the instance goes on at `next`.
    pub fn interrupt_on(mut self, timer: TimerSpec, next: impl Into<String>) -> Self {
        self.last().boundary.push(Boundary {
            on: BoundaryEvent::Timer(timer),
            interrupting: true,
            next: Some(next.into()),
            send: None,
            assign: None,
        });
        self
    }

    /// A non-interrupting boundary timer: `timer` (`After` once, or a `Cycle`) sends `message`
    /// (a command to `to`, or an event) while the step keeps waiting.
    pub fn remind(
        mut self,
        timer: TimerSpec,
        message: impl Into<String>,
        to: Option<&str>,
    ) -> Self {
        self.last().boundary.push(Boundary {
            on: BoundaryEvent::Timer(timer),
            interrupting: false,
            next: None,
            send: Some((message.into(), to.map(str::to_string))),
            assign: None,
        });
        self
    }

    /// A boundary message: if `message` (with the step's correlation key) arrives while the
    /// step waits, the wait ends and the instance goes on at `next`.
    pub fn or_message(mut self, message: impl Into<String>, next: impl Into<String>) -> Self {
        self.last().boundary.push(Boundary {
            on: BoundaryEvent::Message(message.into()),
            interrupting: true,
            next: Some(next.into()),
            send: None,
            assign: None,
        });
        self
    }

    /// A route out of an exclusive gateway: taken when `condition` holds (routes are tried in
    /// the order they are added).
    pub fn when(mut self, condition: impl Into<String>, next: impl Into<String>) -> Self {
        match &mut self.last().kind {
            StepKind::Exclusive { routes, .. } | StepKind::Inclusive { routes, .. } => {
                routes.push(Route {
                    when: condition.into(),
                    next: next.into(),
                })
            }
            other => panic!(
                "`when` applies to exclusive and inclusive gateways, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// The route an exclusive gateway takes when no condition holds.
    pub fn otherwise(mut self, next: impl Into<String>) -> Self {
        match &mut self.last().kind {
            StepKind::Exclusive { default, .. } | StepKind::Inclusive { default, .. } => {
                *default = Some(next.into())
            }
            other => panic!(
                "`otherwise` applies to exclusive and inclusive gateways, not {}",
                other.type_name()
            ),
        }
        self
    }

    /// An event gateway's message event: if `message` comes first, go on at `next`.
    pub fn on_message(self, message: impl Into<String>, next: impl Into<String>) -> Self {
        self.gateway_event(BoundaryEvent::Message(message.into()), next.into())
    }

    /// An event gateway's timer event: if the ISO 8601 `duration` passes first, go on at
    /// `next`.
    pub fn on_timer(self, duration: impl Into<String>, next: impl Into<String>) -> Self {
        self.gateway_event(
            BoundaryEvent::Timer(TimerSpec::After(duration.into())),
            next.into(),
        )
    }

    fn gateway_event(mut self, on: BoundaryEvent, next: String) -> Self {
        match &mut self.last().kind {
            StepKind::EventGateway { events, .. } => events.push(GatewayEvent {
                on,
                output: Output::Merge,
                next,
            }),
            other => panic!("events apply to event gateways, not {}", other.type_name()),
        }
        self
    }

    /// Continue at `step` instead of the step added next.
    pub fn next(mut self, step: impl Into<String>) -> Self {
        self.last().next = Some(step.into());
        let i = self.inner.current;
        self.inner.explicit_next[i] = true;
        self
    }

    /// Add a service step.
    pub fn service(self, id: impl Into<String>, handler: impl Into<String>) -> StepBuilder {
        self.inner.service(id, handler)
    }
    /// Add a send step.
    pub fn send(self, id: impl Into<String>, message: impl Into<String>) -> StepBuilder {
        self.inner.send(id, message)
    }
    /// Add a receive step.
    pub fn receive(self, id: impl Into<String>, message: impl Into<String>) -> StepBuilder {
        self.inner.receive(id, message)
    }
    /// Add an end step.
    pub fn end(self, id: impl Into<String>) -> StepBuilder {
        self.inner.end(id)
    }
    /// Add a step that undoes the completed steps, newest first.
    pub fn compensate_all(self, id: impl Into<String>) -> StepBuilder {
        self.inner.compensate_all(id)
    }
    /// Add a timer step waiting for a duration.
    pub fn wait_for(self, id: impl Into<String>, duration: impl Into<String>) -> StepBuilder {
        self.inner.wait_for(id, duration)
    }
    /// Add a timer step waiting until the date in a variable.
    pub fn wait_until(self, id: impl Into<String>, variable: impl Into<String>) -> StepBuilder {
        self.inner.wait_until(id, variable)
    }
    /// Add an exclusive gateway.
    pub fn exclusive(self, id: impl Into<String>) -> StepBuilder {
        self.inner.exclusive(id)
    }
    /// Add a parallel fork.
    pub fn parallel<I, S>(self, id: impl Into<String>, branches: I) -> StepBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inner.parallel(id, branches)
    }
    /// Add a parallel join.
    pub fn join(self, id: impl Into<String>) -> StepBuilder {
        self.inner.join(id)
    }
    /// Validate and return the definition.
    pub fn build(self) -> Result<ProcessDefinition, Error> {
        self.inner.build()
    }
}
