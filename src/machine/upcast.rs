//! Event schema evolution: events are stored with the version of their JSON shape, and read
//! through [`upcast`], which brings an older shape up to the current one, step by step, before
//! it is deserialized. A change to an event's shape that old readers cannot take (a field
//! renamed, removed or made required) bumps [`EVENT_SCHEMA`] and adds one step to `UPCASTERS`;
//! a purely additive change (a new optional field, a new event type) needs neither. The
//! streams in `tests/fixtures/` were written by the first released schema and are replayed by
//! the tests on every change.

use serde_json::Value;

use super::Event;

/// The schema version of the events this build writes.
pub const EVENT_SCHEMA: i16 = 1;

/// One upcasting step: from version `n` (its index + 1) to `n + 1`, given the event type.
type Upcaster = fn(&str, Value) -> Value;

/// The steps from each older version to the next. Version 1 is the first released shape and
/// still the current one; additive changes since (a call activity's `parent` on
/// `InstanceStarted`, new event types) need no step.
const UPCASTERS: &[Upcaster] = &[];

/// Why a stored event cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpcastError {
    /// Written by a newer longrun than this one.
    #[error(
        "event schema version {0} is newer than this build's ({EVENT_SCHEMA}); upgrade longrun"
    )]
    Newer(i16),
    /// Version 0 or negative.
    #[error("event schema version {0} does not exist")]
    Unknown(i16),
    /// The JSON does not have the event's shape even after upcasting.
    #[error("event {event_type} (schema version {version}) does not deserialize: {source}")]
    Shape {
        /// The event type.
        event_type: String,
        /// Its stored schema version.
        version: i16,
        /// The deserializer's complaint.
        source: serde_json::Error,
    },
}

/// Read a stored event of schema `version`, upcasting it to the current shape first.
pub fn upcast(version: i16, event_type: &str, mut data: Value) -> Result<Event, UpcastError> {
    if version > EVENT_SCHEMA {
        return Err(UpcastError::Newer(version));
    }
    if version < 1 {
        return Err(UpcastError::Unknown(version));
    }
    for step in &UPCASTERS[(version - 1) as usize..] {
        data = step(event_type, data);
    }
    // The stored JSON carries its type tag; make sure it agrees with the column.
    if let Value::Object(m) = &mut data {
        m.entry("type")
            .or_insert_with(|| Value::String(event_type.to_string()));
    }
    serde_json::from_value(data).map_err(|source| UpcastError::Shape {
        event_type: event_type.to_string(),
        version,
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::{json, Map, Value};
    use uuid::Uuid;

    use super::*;
    use crate::definition::ProcessDefinition;
    use crate::machine::{decide, evolve, Context, Input, InstanceState, Status, Wait};

    /// Streams recorded by the first released event schema must load and continue.
    #[test]
    fn streams_of_the_first_schema_load_and_continue() {
        let doc: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/streams_v1.json")).unwrap();
        let defs: HashMap<String, crate::definition::Process> = doc["definitions"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let def: ProcessDefinition = serde_json::from_value(v.clone()).unwrap();
                (k.clone(), crate::definition::compile(def))
            })
            .collect();
        let streams = doc["streams"].as_array().unwrap();
        assert_eq!(streams.len(), 5);
        for s in streams {
            let name = s["name"].as_str().unwrap();
            let def = &defs[s["definition"].as_str().unwrap()];
            let mut state = InstanceState::default();
            let events = s["events"].as_array().unwrap();
            for e in events {
                let event = upcast(
                    e["schema_version"].as_i64().unwrap() as i16,
                    e["event_type"].as_str().unwrap(),
                    e["data"].clone(),
                )
                .unwrap_or_else(|err| panic!("{name}: {err}"));
                evolve(&mut state, &event);
            }
            // The state the old build stored loads too, and equals the replay.
            let mut stored: InstanceState = serde_json::from_value(s["state"].clone()).unwrap();
            stored.variables = match &s["variables"] {
                Value::Object(m) => m.clone(),
                _ => Map::new(),
            };
            assert_eq!(state, stored, "{name}: replay equals the stored state");

            // And each continues to its end on this build.
            let id: Uuid = serde_json::from_value(s["instance_id"].clone()).unwrap();
            let mut seq = events.len() as i64 + 1;
            let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
            let mut feed = |state: &mut InstanceState, input: Input| {
                let out = decide(
                    def,
                    state,
                    &input,
                    Context {
                        instance_id: id,
                        next_seq: seq,
                        now,
                    },
                )
                .unwrap_or_else(|e| panic!("{name}: {input:?}: {e}"));
                seq += out.len() as i64;
                for e in &out {
                    evolve(state, e);
                }
            };
            let msg = |n: &str| Input::Message {
                message_id: format!("{name}-{n}"),
                name: n.into(),
                payload: json!({}),
            };
            match name {
                "waiting_for_shipment" => feed(&mut state, msg("GoodsShipped")),
                "waiting_for_card" => {
                    feed(&mut state, msg("CreditCardUpdated"));
                    feed(&mut state, msg("PaymentReceived"));
                    feed(&mut state, msg("GoodsFetched"));
                    feed(&mut state, msg("GoodsShipped"));
                }
                "cancelled_after_window" => {
                    assert_eq!(state.status, Status::Completed);
                    assert!(decide(
                        def,
                        &state,
                        &msg("GoodsShipped"),
                        Context {
                            instance_id: id,
                            next_seq: seq,
                            now
                        }
                    )
                    .is_err());
                    continue;
                }
                "incident" => {
                    feed(
                        &mut state,
                        Input::Retry {
                            variables: None,
                            by: String::new(),
                        },
                    );
                    let Some(Wait::Job { job_id, .. }) = state.waits.first().cloned() else {
                        panic!("{name}: waits for the job again")
                    };
                    feed(
                        &mut state,
                        Input::JobCompleted {
                            job_id,
                            result: json!({"ok": true}),
                        },
                    );
                }
                "paused" => {
                    feed(&mut state, Input::Resume { by: String::new() });
                    feed(&mut state, msg("PaymentReceived"));
                    feed(&mut state, msg("GoodsFetched"));
                    feed(&mut state, msg("GoodsShipped"));
                }
                other => panic!("no continuation for {other}"),
            }
            assert_eq!(
                state.status,
                Status::Completed,
                "{name} continues to its end"
            );
        }
    }

    #[test]
    fn newer_and_unknown_versions_are_refused() {
        assert!(matches!(
            upcast(EVENT_SCHEMA + 1, "InstancePaused", json!({})),
            Err(UpcastError::Newer(_))
        ));
        assert!(matches!(
            upcast(0, "InstancePaused", json!({})),
            Err(UpcastError::Unknown(0))
        ));
        assert!(matches!(
            upcast(1, "JobCreated", json!({"step": 3})),
            Err(UpcastError::Shape { .. })
        ));
        assert!(upcast(1, "InstancePaused", json!({"type": "InstancePaused"})).is_ok());
    }
}
