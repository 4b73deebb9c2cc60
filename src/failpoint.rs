//! Failpoints for the tests of what no input may do: stop a worker. In debug builds (what
//! `cargo test` builds) an instance whose business key is [`PANIC_IN_DECIDE`] makes `decide`
//! panic on any input but a fault, so the tests can check that the engine catches the panic,
//! sets that one instance aside and goes on with the rest. Release builds compile none of it.

/// The business key that makes `decide` panic in debug builds.
#[doc(hidden)]
pub const PANIC_IN_DECIDE: &str = "longrun-failpoint:panic-in-decide";

#[inline]
pub(crate) fn decide(business_key: &str, input: &crate::machine::Input) {
    #[cfg(debug_assertions)]
    if business_key == PANIC_IN_DECIDE && !matches!(input, crate::machine::Input::Fault { .. }) {
        panic!("failpoint {PANIC_IN_DECIDE}");
    }
    #[cfg(not(debug_assertions))]
    let _ = (business_key, input);
}
