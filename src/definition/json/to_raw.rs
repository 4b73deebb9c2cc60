//! A step back to its flat JSON form.

use super::*;

impl From<Step> for RawStep {
    fn from(s: Step) -> RawStep {
        let mut r = RawStep {
            id: s.id,
            kind: s.kind.type_name().to_string(),
            handler: None,
            message: None,
            to: None,
            key: None,
            payload: None,
            output: None,
            timeout: None,
            retry: None,
            errors: Vec::new(),
            headers: BTreeMap::new(),
            duration: None,
            until: None,
            boundary: s.boundary.into_iter().map(RawBoundary::from).collect(),
            compensate: s.compensate,
            routes: Vec::new(),
            default: None,
            branches: Vec::new(),
            events: Vec::new(),
            process: None,
            signal: None,
            code: None,
            inputs: s.inputs,
            outputs: s.outputs,
            assignee: None,
            candidate_users: Vec::new(),
            candidate_groups: Vec::new(),
            due: None,
            follow_up: None,
            priority: None,
            form: None,
            fields: BTreeMap::new(),
            start: None,
            within: s.within,
            multi: s.multi,
            milestone: s.milestone,
            interrupting: None,
            next: s.next,
        };
        match s.kind {
            StepKind::Service {
                handler,
                output,
                timeout,
                retry,
                errors,
                headers,
            } => {
                r.handler = Some(handler);
                r.output = output.into_raw();
                r.timeout = timeout;
                r.retry = retry;
                r.errors = errors;
                r.headers = headers;
            }
            StepKind::Timer { timer } => match timer {
                TimerSpec::After(d) | TimerSpec::Cycle(d) => r.duration = Some(d),
                TimerSpec::Until(u) => r.until = Some(u),
            },
            StepKind::Send {
                message,
                to,
                key,
                payload,
            } => {
                r.message = Some(message);
                r.to = to;
                r.key = key;
                r.payload = payload;
            }
            StepKind::Receive {
                message,
                key,
                output,
            } => {
                r.message = Some(message);
                r.key = key;
                r.output = output.into_raw();
            }
            StepKind::Exclusive { routes, default } | StepKind::Inclusive { routes, default } => {
                r.routes = routes;
                r.default = default;
            }
            StepKind::Parallel { branches } => r.branches = branches,
            StepKind::EventGateway { key, events } => {
                r.key = key;
                r.events = events;
            }
            StepKind::Call {
                process,
                input,
                output,
                errors,
            } => {
                r.process = Some(process);
                r.payload = input;
                r.output = output.into_raw();
                r.errors = errors;
            }
            StepKind::Error { code } => r.code = Some(code),
            StepKind::UserTask(t) => {
                r.assignee = t.assignee;
                r.candidate_users = t.candidate_users;
                r.candidate_groups = t.candidate_groups;
                r.due = t.due;
                r.follow_up = t.follow_up;
                r.priority = (t.priority != DEFAULT_PRIORITY).then_some(t.priority);
                r.form = t.form;
                r.fields = t.fields;
                r.output = t.output.into_raw();
            }
            StepKind::Signal { signal } => r.signal = Some(signal),
            StepKind::Subprocess { start, errors } => {
                r.start = Some(start);
                r.errors = errors;
            }
            StepKind::EventSubprocess { start, code } => r.event_fields(start, code),
            StepKind::WaitSignal { signal, output } => {
                r.signal = Some(signal);
                r.output = output.into_raw();
            }
            StepKind::End
            | StepKind::Terminate
            | StepKind::Compensate
            | StepKind::Join
            | StepKind::InclusiveJoin => {}
        }
        r
    }
}
