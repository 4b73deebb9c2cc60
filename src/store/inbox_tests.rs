//! Tests of the inbox's helpers.
use super::*;
use proptest::prelude::*;

proptest! {
    /// Any envelope is accepted or refused with a reason, never a panic; an accepted one
    /// keeps the rules (and so can be stored).
    #[test]
    fn any_envelope_is_checked_without_a_panic(
        name in "\\PC{0,30}|\\p{Cc}{1,3}",
        key in "\\PC{0,30}",
        id in "\\PC{0,30}",
        note in "\\PC{0,20}|\\x00",
    ) {
        let m = Message::new(name.clone(), key, id.clone()).payload(serde_json::json!({"note": note}));
        match m.check() {
            Ok(()) => {
                prop_assert!(crate::definition::is_message_name(&name));
                prop_assert!(!id.is_empty());
                prop_assert!(!has_nul(&m.payload));
            }
            Err(Error::BadInput(why)) => prop_assert!(!why.is_empty()),
            Err(other) => prop_assert!(false, "unexpected {other}"),
        }
    }
}
