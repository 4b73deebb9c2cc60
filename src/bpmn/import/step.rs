//! One BPMN element as a longrun step: its kind, then the boundary events attached to it.

use crate::definition::{
    Boundary, BoundaryEvent, Compensation, ErrorRoute, GatewayEvent, RetryPolicy, Route, Step,
    StepKind,
};

use super::xml::{
    child, ext, feel_condition, handler_of, is_bpmn, juel_condition, list_of, literal_name, lr,
    output_of,
};
use super::{ImportError, Importer, Xn};
use crate::bpmn::ZEEBE_NS;

impl<'a> Importer<'a> {
    /// A service task's `zeebe:taskHeaders` (`<zeebe:header key="..." value="..." />`).
    fn headers_of(&self, n: Xn) -> Result<std::collections::BTreeMap<String, String>, ImportError> {
        let mut headers = std::collections::BTreeMap::new();
        if let Some(h) = ext(n, ZEEBE_NS, "taskHeaders") {
            for x in h.children().filter(|c| {
                c.is_element()
                    && c.tag_name().namespace() == Some(ZEEBE_NS)
                    && c.tag_name().name() == "header"
            }) {
                let (Some(k), Some(v)) = (x.attribute("key"), x.attribute("value")) else {
                    return self.fail(x, "a zeebe:header needs a key and a value");
                };
                headers.insert(k.to_string(), v.to_string());
            }
        }
        Ok(headers)
    }

    /// The step an element is, with its boundary events.
    pub(super) fn step(&self, n: Xn<'a>) -> Result<Step, ImportError> {
        let n = &n;
        let raw_id = n.attribute("id").unwrap_or("");
        let id = self.id_of(*n)?;
        let defs: Vec<Xn> = n
            .children()
            .filter(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"))
            .collect();
        let routed = matches!(
            n.tag_name().name(),
            "exclusiveGateway" | "eventBasedGateway"
        ) || ((is_bpmn(n, "parallelGateway") || is_bpmn(n, "inclusiveGateway"))
            && self.out_of(raw_id).len() > 1);
        let mut next = if routed { None } else { self.single_next(*n)? };
        // Extensions that change what a step does are refused, not dropped without a word.
        for (ns, name, what) in [
            (ZEEBE_NS, "executionListeners", "execution listeners"),
            (
                super::CAMUNDA7_NS,
                "executionListener",
                "execution listeners",
            ),
        ] {
            if let Some(x) = ext(*n, ns, name) {
                return self.fail(
                    x,
                    format!(
                        "{name} ({what}) is not run by longrun yet: the step would run without it"
                    ),
                );
            }
        }
        let mut trigger = None;
        let kind = match n.tag_name().name() {
            "serviceTask" => {
                let Some(handler) = handler_of(*n) else {
                    return self.fail(
                        *n,
                        if n.attribute((super::CAMUNDA7_NS, "expression")).is_some() {
                            "camunda:expression here is not a method call on a bean (`${bean.method(..)}`, which names the handler `bean.method`): name a handler with camunda:delegateExpression=\"${name}\", camunda:class or zeebe:taskDefinition type"
                        } else {
                            "a service task needs zeebe:taskDefinition type (or Camunda 7's camunda:topic, camunda:class or camunda:delegateExpression)"
                        },
                    );
                };
                // `type="=x"` names the handler with an expression; `="x"` is a literal.
                let Some(handler) = literal_name(&handler).map(str::to_string) else {
                    return self.fail(
                        *n,
                        format!("the job type `{handler}` is an expression; longrun's handlers are named in the diagram"),
                    );
                };
                let c7_retry = ext(*n, super::CAMUNDA7_NS, "failedJobRetryTimeCycle");
                let retry = match (
                    lr(*n, "retry"),
                    ext(*n, ZEEBE_NS, "taskDefinition").and_then(|t| t.attribute("retries")),
                ) {
                    (Some(j), _) => Some(
                        serde_json::from_str::<RetryPolicy>(j)
                            .or_else(|e| self.fail(*n, format!("longrun:retry: {e}")))?,
                    ),
                    // Camunda 7's `R5/PT5M`: five attempts in all, five minutes apart.
                    (None, None) if c7_retry.is_some() => {
                        let c = c7_retry.expect("checked");
                        let text = c.text().unwrap_or("").trim();
                        let interval = text.split_once('/').map(|(_, d)| d.to_string());
                        match (crate::definition::parse_cycle(text), interval) {
                            (Ok((attempts, _)), Some(interval)) if (1..=100).contains(&attempts) => {
                                let mut policy = RetryPolicy::new(attempts, interval);
                                policy.backoff = 1.0;
                                Some(policy)
                            }
                            _ => {
                                return self.fail(
                                    c,
                                    format!("camunda:failedJobRetryTimeCycle \"{text}\": longrun reads a cycle of 1 to 100 attempts, e.g. R5/PT5M (not a list of intervals, not an unbounded R/...)"),
                                )
                            }
                        }
                    }
                    // Zeebe's retries count every attempt, the first included.
                    (None, Some(r)) => match r.trim().parse::<u32>() {
                        Ok(attempts) if (1..=100).contains(&attempts) => {
                            Some(RetryPolicy::new(attempts, "PT1S"))
                        }
                        _ => {
                            return self.fail(
                                *n,
                                format!("zeebe:taskDefinition retries=\"{r}\": a number of attempts from 1 to 100"),
                            )
                        }
                    },
                    (None, None) => None,
                };
                StepKind::Service {
                    handler,
                    output: output_of(*n),
                    timeout: lr(*n, "timeout").map(str::to_string),
                    retry,
                    errors: Vec::new(),
                    headers: self.headers_of(*n)?,
                }
            }
            "userTask" => StepKind::UserTask(self.user_task_of(*n)?),
            "sendTask" => StepKind::Send {
                message: self.message_of(*n, n.attribute("messageRef"))?.0,
                to: lr(*n, "to").map(str::to_string),
                key: lr(*n, "key").map(str::to_string),
                payload: list_of(lr(*n, "payload")),
            },
            "receiveTask" => {
                let (message, key) = self.message_of(*n, n.attribute("messageRef"))?;
                StepKind::Receive {
                    message,
                    key: lr(*n, "key").map(str::to_string).or(key),
                    output: output_of(*n),
                }
            }
            "intermediateCatchEvent" => match defs.first() {
                Some(d) if is_bpmn(d, "timerEventDefinition") => StepKind::Timer {
                    timer: self.timer_of(*n, *d)?,
                },
                Some(d) if is_bpmn(d, "messageEventDefinition") => {
                    let (message, key) = self.message_of(*d, d.attribute("messageRef"))?;
                    StepKind::Receive {
                        message,
                        key: lr(*n, "key").map(str::to_string).or(key),
                        output: output_of(*n),
                    }
                }
                Some(d) if is_bpmn(d, "signalEventDefinition") => StepKind::WaitSignal {
                    signal: self.signal_of(*d)?,
                    output: output_of(*n),
                },
                _ => {
                    return self.fail(
                        *n,
                        "an intermediate catch event is a timer, a message or a signal",
                    )
                }
            },
            // A plain task, a manual task and a plain throw event (a milestone) do nothing:
            // the instance passes on (several incoming flows each pass, as in BPMN). Without
            // a way out, the path ends there.
            "task" | "manualTask" => pass_through(next.take()),
            "intermediateThrowEvent" if defs.is_empty() => pass_through(next.take()),
            "intermediateThrowEvent" => match defs.first() {
                Some(d) if is_bpmn(d, "compensateEventDefinition") => StepKind::Compensate,
                Some(d) if is_bpmn(d, "signalEventDefinition") => StepKind::Signal {
                    signal: self.signal_of(*d)?,
                },
                Some(d) if is_bpmn(d, "messageEventDefinition") => self.message_throw(*n, *d)?,
                _ => {
                    return self.fail(
                        *n,
                        "an intermediate throw event sends a message, throws a signal or compensates",
                    )
                }
            },
            "endEvent" => match defs.first() {
                None => StepKind::End,
                Some(d) if is_bpmn(d, "terminateEventDefinition") => StepKind::Terminate,
                Some(d) if is_bpmn(d, "errorEventDefinition") => {
                    let Some(code) = d
                        .attribute("errorRef")
                        .and_then(|r| self.error_codes.get(r))
                    else {
                        return self.fail(*d, "an error end event needs an error with a code");
                    };
                    StepKind::Error {
                        code: code.to_string(),
                    }
                }
                Some(d) => {
                    return self.fail(
                        *d,
                        "an end event is plain, terminate, error, message, signal or compensation (escalation and other end events are not supported)",
                    )
                }
            },
            // An inclusive gateway with one way out and several in is the join.
            "inclusiveGateway" if self.out_of(raw_id).len() == 1 && self.in_of(raw_id).len() > 1 => {
                StepKind::InclusiveJoin
            }
            "inclusiveGateway" if self.out_of(raw_id).len() > 1 && self.in_of(raw_id).len() > 1 => {
                return self.fail(
                    *n,
                    "an inclusive gateway that both joins and forks: use two gateways",
                );
            }
            "exclusiveGateway" | "inclusiveGateway" => {
                let outs = self.out_of(raw_id);
                // A merge (one way out, no condition on it) goes on by its default.
                let default = match outs.as_slice() {
                    [only] if only.condition.is_none() => Some(only.id),
                    _ => n.attribute("default"),
                };
                let mut routes = Vec::new();
                let mut default_step = None;
                for f in outs {
                    if Some(f.id) == default {
                        default_step = Some(self.target(f)?);
                    } else {
                        match &f.condition {
                            Some(c) => {
                                let when = feel_condition(&juel_condition(c));
                                if let Err(e) = crate::expr::Expr::parse(&when) {
                                    let flow = self
                                        .process
                                        .children()
                                        .find(|x| {
                                            is_bpmn(x, "sequenceFlow")
                                                && x.attribute("id") == Some(f.id)
                                        })
                                        .unwrap_or(*n);
                                    return self.fail(flow, format!("condition `{c}`: {e}"));
                                }
                                routes.push(Route {
                                    when,
                                    next: self.target(f)?,
                                })
                            }
                            None => {
                                return self.fail(
                                    *n,
                                    format!(
                                        "flow {} has no condition and is not the default",
                                        f.id
                                    ),
                                )
                            }
                        }
                    }
                }
                if is_bpmn(n, "inclusiveGateway") {
                    StepKind::Inclusive {
                        routes,
                        default: default_step,
                    }
                } else {
                    StepKind::Exclusive {
                        routes,
                        default: default_step,
                    }
                }
            }
            "parallelGateway" => {
                let outs = self.out_of(raw_id);
                if outs.len() > 1 {
                    if self.in_of(raw_id).len() > 1 {
                        return self.fail(
                            *n,
                            "a parallel gateway that both joins and forks: use two gateways",
                        );
                    }
                    StepKind::Parallel {
                        branches: outs
                            .iter()
                            .map(|f| self.target(f))
                            .collect::<Result<_, _>>()?,
                    }
                } else {
                    StepKind::Join
                }
            }
            "eventBasedGateway" => {
                let mut events = Vec::new();
                let mut key = lr(*n, "key").map(str::to_string);
                for f in self.out_of(raw_id) {
                    let Some(e) = self.by_id.get(f.to) else {
                        return self.fail(*n, "an event gateway leads to catch events");
                    };
                    let d = e.children().find(|c| {
                        c.is_element() && c.tag_name().name().ends_with("EventDefinition")
                    });
                    let on = match d {
                        Some(d) if is_bpmn(&d, "messageEventDefinition") => {
                            let (m, k) = self.message_of(d, d.attribute("messageRef"))?;
                            if key.is_none() {
                                key = k;
                            }
                            BoundaryEvent::Message(m)
                        }
                        Some(d) if is_bpmn(&d, "timerEventDefinition") => {
                            BoundaryEvent::Timer(self.timer_of(*e, d)?)
                        }
                        _ => {
                            return self.fail(
                                *e,
                                "an event gateway's events are message or timer catch events",
                            )
                        }
                    };
                    let Some(after) = self.single_next(*e)? else {
                        return self.fail(*e, "needs an outgoing flow");
                    };
                    events.push(GatewayEvent {
                        on,
                        output: output_of(*e),
                        next: after,
                    });
                }
                StepKind::EventGateway { key, events }
            }
            "callActivity" => {
                let Some(process) = ext(*n, ZEEBE_NS, "calledElement")
                    .and_then(|c| c.attribute("processId"))
                    .or(n.attribute("calledElement"))
                else {
                    return self.fail(*n, "a call activity needs zeebe:calledElement processId");
                };
                // `start-end` or `="start-end"`: a literal id, normalised as the callee's own
                // id was when it deployed. `=processId` chooses the callee at run time, which
                // longrun does not do.
                let literal = literal_name(process);
                let Some(literal) = literal else {
                    return self.fail(
                        *n,
                        format!("processId `{process}` chooses the called process with an expression; longrun calls a process named in the diagram"),
                    );
                };
                StepKind::Call {
                    process: super::normal_id(literal),
                    input: list_of(lr(*n, "payload")),
                    output: output_of(*n),
                    errors: Vec::new(),
                }
            }
            "subProcess" if n.attribute("triggeredByEvent") == Some("true") => {
                let (kind, on) = self.event_subprocess(*n)?;
                trigger = Some(on);
                kind
            }
            "subProcess" => StepKind::Subprocess {
                start: self.subprocess_start(*n)?,
                errors: Vec::new(),
            },
            other => return self.fail(*n, format!("{other} is not supported")),
        };
        // Boundary events attached to it.
        let mut boundary = Vec::new();
        let mut compensate = None;
        let mut errors = Vec::new();
        for b in self
            .nodes
            .iter()
            .filter(|b| is_bpmn(b, "boundaryEvent") && b.attribute("attachedToRef") == Some(raw_id))
        {
            let bid = b.attribute("id").unwrap_or("");
            let d = b
                .children()
                .find(|c| c.is_element() && c.tag_name().name().ends_with("EventDefinition"));
            let interrupting = b.attribute("cancelActivity") != Some("false");
            match d {
                Some(d) if is_bpmn(&d, "errorEventDefinition") => {
                    let code = d
                        .attribute("errorRef")
                        .and_then(|r| self.error_codes.get(r))
                        .map(|c| c.to_string());
                    let (Some(code), Some(after)) = (code, self.single_next(*b)?) else {
                        return self.fail(*b, "an error boundary event needs an error with a code and an outgoing flow");
                    };
                    let var = |a: &str| {
                        d.attribute((super::CAMUNDA7_NS, a))
                            .or(lr(d, a))
                            .map(str::to_string)
                    };
                    errors.push(ErrorRoute {
                        code_variable: var("errorCodeVariable"),
                        message_variable: var("errorMessageVariable"),
                        ..ErrorRoute::new(code, after)
                    });
                }
                Some(d) if is_bpmn(&d, "compensateEventDefinition") => {
                    let Some(handler) = self
                        .associations
                        .iter()
                        .find(|a| a.0 == bid)
                        .and_then(|a| self.by_id.get(a.1))
                    else {
                        return self.fail(*b, "a compensation boundary event needs an association to a task marked for compensation");
                    };
                    compensate = Some(if is_bpmn(handler, "sendTask") {
                        Compensation::Send {
                            send: self
                                .message_of(*handler, handler.attribute("messageRef"))?
                                .0,
                            to: lr(*handler, "to").map(str::to_string),
                        }
                    } else {
                        match handler_of(*handler) {
                            Some(h) => Compensation::Handler { handler: h },
                            None => {
                                return self.fail(
                                    *handler,
                                    "a compensation task needs a handler or a message",
                                )
                            }
                        }
                    });
                }
                Some(d)
                    if is_bpmn(&d, "timerEventDefinition")
                        || is_bpmn(&d, "messageEventDefinition")
                        || is_bpmn(&d, "signalEventDefinition") =>
                {
                    let on = if is_bpmn(&d, "timerEventDefinition") {
                        BoundaryEvent::Timer(self.timer_of(*b, d)?)
                    } else if is_bpmn(&d, "signalEventDefinition") {
                        BoundaryEvent::Signal(self.signal_of(d)?)
                    } else {
                        BoundaryEvent::Message(self.message_of(d, d.attribute("messageRef"))?.0)
                    };
                    if interrupting {
                        boundary.push(Boundary {
                            on,
                            interrupting,
                            next: self.single_next(*b)?,
                            send: None,
                            assign: None,
                        });
                    } else {
                        // An escalation reassigns the task (longrun:assign); a reminder leads
                        // to a message throw event; it may do both.
                        let assign = match lr(*b, "assign") {
                            Some(j) => Some(
                                serde_json::from_str::<crate::definition::Reassign>(j)
                                    .or_else(|e| self.fail(*b, format!("longrun:assign: {e}")))?,
                            ),
                            None => None,
                        };
                        let throw = self
                            .out_of(bid)
                            .first()
                            .and_then(|f| self.by_id.get(f.to))
                            .copied();
                        let reminder = throw.filter(|t| {
                            is_bpmn(t, "intermediateThrowEvent")
                                && child(*t, "messageEventDefinition").is_some()
                        });
                        let (send, path) = match (reminder, throw) {
                            (None, None) if assign.is_some() => (None, None),
                            (Some(t), _) => {
                                let md = child(t, "messageEventDefinition").expect("checked");
                                (
                                    Some((
                                        self.message_of(md, md.attribute("messageRef"))?.0,
                                        lr(t, "to").map(str::to_string),
                                    )),
                                    None,
                                )
                            }
                            // Its path runs beside the step, which keeps waiting.
                            (None, Some(_)) => (None, self.single_next(*b)?),
                            (None, None) => {
                                return self.fail(
                                    *b,
                                    "a non-interrupting boundary event needs an outgoing flow",
                                )
                            }
                        };
                        boundary.push(Boundary {
                            on,
                            interrupting,
                            next: path,
                            send,
                            assign,
                        });
                    }
                }
                _ => return self.fail(
                    *b,
                    "a boundary event is a timer, a message, a signal, an error or a compensation",
                ),
            }
        }
        let kind = match kind {
            StepKind::Service {
                handler,
                output,
                timeout,
                retry,
                headers,
                ..
            } => StepKind::Service {
                handler,
                output,
                timeout,
                retry,
                errors,
                headers,
            },
            StepKind::Call {
                process,
                input,
                output,
                ..
            } => StepKind::Call {
                process,
                input,
                output,
                errors,
            },
            StepKind::Subprocess { start, .. } => StepKind::Subprocess { start, errors },
            other if !errors.is_empty() => {
                return self.fail(
                    *n,
                    format!(
                    "only service tasks, call activities and subprocesses route errors, not a {}",
                    other.type_name()
                ),
                )
            }
            other => other,
        };
        let (inputs, outputs) = self.io_of(*n)?;
        self.check_io(*n, &kind, &inputs, &outputs)?;
        Ok(Step {
            id,
            kind,
            next,
            boundary: trigger.unwrap_or(boundary),
            compensate,
            inputs,
            outputs,
            within: None,
            multi: self.multi_of(*n)?,
            milestone: lr(*n, "milestone").map(str::to_string),
        })
    }
}

/// A step that does nothing: on to `next`, or the end of the path without one. It is an
/// exclusive gateway with only its default, which passes each arrival on.
fn pass_through(next: Option<String>) -> StepKind {
    match next {
        Some(next) => StepKind::Exclusive {
            routes: Vec::new(),
            default: Some(next),
        },
        None => StepKind::End,
    }
}
