//! Timer specifications: ISO 8601 durations (`PT30S`, `P14D`), dates taken from a variable,
//! and cycles (`R3/PT1H`).

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// When a timer fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerSpec {
    /// After an ISO 8601 duration from the moment the timer starts, e.g. `P14D`.
    After(String),
    /// At the RFC 3339 date-time held by this variable path, e.g. `deliveryDeadline`, or at
    /// this literal RFC 3339 date-time, e.g. `2026-12-24T10:00:00Z` (no variable path can
    /// look like one).
    Until(String),
    /// Every interval, a number of times: `R3/PT1H` (three times, an hour apart).
    Cycle(String),
}

/// The longest span longrun accepts anywhere a duration is given (timers, retries, leases,
/// times to live): 100 years of 365 days. Longer ones are refused where they come in, so every
/// due time the engine computes stays far inside what dates can hold.
pub const MAX_SPAN: Duration = Duration::milliseconds(3_153_600_000_000);

/// `at + span`, or why it cannot be: a span beyond [`MAX_SPAN`] or a date out of range. Every
/// due time the engine computes goes through here, so no input can make it panic.
pub fn later(
    at: chrono::DateTime<chrono::Utc>,
    span: Duration,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if span > MAX_SPAN {
        return Err(format!(
            "a span of {} days is longer than 100 years",
            span.num_days()
        ));
    }
    at.checked_add_signed(span).ok_or_else(|| {
        format!(
            "{at} plus {} days is beyond the dates longrun can hold",
            span.num_days()
        )
    })
}

/// Parse an ISO 8601 duration: `P[nW][nD][T[nH][nM][n[.f]S]]`, its parts in that order, each
/// at most once, and a `T` only before a time part (`PT1S2H`, `P1D1D` and `P1DT` are
/// refused). Years and months are refused: they have no fixed length. The whole span is at
/// most [`MAX_SPAN`] (100 years), each part and their sum.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse(text, true)
}

/// As [`parse_duration`], but with the grammar documents deployed before it was strict were
/// accepted under (parts in any order, repeated, a trailing `T`): what a stored version is
/// run with, so that no deployed version stops working.
pub(crate) fn parse_duration_lenient(text: &str) -> Result<Duration, String> {
    parse(text, false)
}

fn parse(text: &str, strict: bool) -> Result<Duration, String> {
    let bad = |why: &str| Err(format!("invalid ISO 8601 duration {}: {why}", quote(text)));
    let Some(rest) = text.strip_prefix('P') else {
        return bad("it must start with P");
    };
    if rest.is_empty() || rest == "T" {
        return bad("it names no amount");
    }
    let mut total = Duration::zero();
    let mut in_time = false;
    let mut number = String::new();
    let mut seen_any = false;
    // Strict: the rank of the last part (W 1, D 2, H 3, M 4, S 5); each must be higher.
    let mut rank = 0;
    let mut parts_after_t = 0;
    for c in rest.chars() {
        match c {
            'T' if !in_time && number.is_empty() => in_time = true,
            'T' if strict => return bad("T appears twice, or after a number"),
            '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
            unit => {
                if number.is_empty() {
                    return bad(&format!("no number before {unit}"));
                }
                let value: f64 = match number.parse() {
                    Ok(v) => v,
                    Err(_) => return bad(&format!("\"{number}\" is not a number")),
                };
                if number.contains('.') && !(in_time && unit == 'S') {
                    return bad("only seconds may have a fraction");
                }
                let millis = match (in_time, unit) {
                    (false, 'W') => value * 7.0 * 86_400_000.0,
                    (false, 'D') => value * 86_400_000.0,
                    (true, 'H') => value * 3_600_000.0,
                    (true, 'M') => value * 60_000.0,
                    (true, 'S') => value * 1000.0,
                    (false, 'Y') | (false, 'M') => {
                        return bad("years and months have no fixed length; use days (P30D)")
                    }
                    _ => return bad(&format!("unexpected {unit}")),
                };
                if strict {
                    let this = match (in_time, unit) {
                        (false, 'W') => 1,
                        (false, _) => 2,
                        (true, 'H') => 3,
                        (true, 'M') => 4,
                        _ => 5,
                    };
                    if this <= rank {
                        return bad(&format!(
                            "{unit} comes after a part it must precede, or twice (the order is W, D, T, H, M, S)"
                        ));
                    }
                    rank = this;
                    if in_time {
                        parts_after_t += 1;
                    }
                }
                if millis > MAX_SPAN.num_milliseconds() as f64 {
                    return bad("longer than 100 years");
                }
                total += Duration::milliseconds(millis.round() as i64);
                // Each part is bounded above, so the sum cannot overflow before this check.
                if total > MAX_SPAN {
                    return bad("longer than 100 years");
                }
                number.clear();
                seen_any = true;
            }
        }
    }
    if !number.is_empty() {
        return bad("a number has no unit");
    }
    if !seen_any {
        return bad("it names no amount");
    }
    if strict && in_time && parts_after_t == 0 {
        return bad("T is not followed by hours, minutes or seconds");
    }
    if total <= Duration::zero() {
        return bad("it must be longer than zero");
    }
    Ok(total)
}

/// `text` as a literal RFC 3339 date-time, if it is one.
pub fn literal_date(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// `text` in quotes for an error message, cut after 40 characters (an error must not repeat a
/// megabyte of input).
fn quote(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("\"{}...\" ({} bytes)", &text[..at], text.len()),
        None => format!("\"{text}\""),
    }
}

/// Parse a cycle `R<n>/<duration>`: how many times, and the interval (a strict duration).
pub fn parse_cycle(text: &str) -> Result<(u32, Duration), String> {
    cycle(text, true)
}

/// As [`parse_cycle`] with the lenient duration grammar of stored documents.
pub(crate) fn parse_cycle_lenient(text: &str) -> Result<(u32, Duration), String> {
    cycle(text, false)
}

fn cycle(text: &str, strict: bool) -> Result<(u32, Duration), String> {
    let bad = |why: &str| Err(format!("invalid cycle {}: {why}", quote(text)));
    let Some(rest) = text.strip_prefix('R') else {
        return bad("it must look like R3/PT1H");
    };
    let Some((count, duration)) = rest.split_once('/') else {
        return bad("it must look like R3/PT1H");
    };
    let count: u32 = match count.parse() {
        Ok(n) if (1..=10_000).contains(&n) => n,
        _ => return bad("the repetition count must be a number from 1 to 10000"),
    };
    Ok((count, parse(duration, strict)?))
}

impl TimerSpec {
    /// Check the spec's syntax (a variable path is checked when the timer starts).
    pub fn check(&self) -> Result<(), String> {
        match self {
            TimerSpec::After(d) => parse_duration(d).map(|_| ()),
            TimerSpec::Cycle(c) => parse_cycle(c).map(|_| ()),
            TimerSpec::Until(path) => {
                if literal_date(path).is_some() {
                    return Ok(());
                }
                if path.is_empty() || path.split('.').any(str::is_empty) || path.contains(':') {
                    Err(format!("invalid variable path \"{path}\""))
                } else {
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("PT30S").unwrap(), Duration::seconds(30));
        assert_eq!(parse_duration("P14D").unwrap(), Duration::days(14));
        assert_eq!(parse_duration("P1W").unwrap(), Duration::days(7));
        assert_eq!(
            parse_duration("P1DT2H3M4.5S").unwrap(),
            Duration::milliseconds(86_400_000 + 7_200_000 + 180_000 + 4_500)
        );
        assert_eq!(
            parse_duration("PT0.25S").unwrap(),
            Duration::milliseconds(250)
        );
        for bad in [
            "", "P", "PT", "14D", "P1M", "P1Y", "PT1.5H", "P1D2", "PT0S", "PXD", "P1H",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn parts_within_bounds_whose_sum_is_too_long_are_refused() {
        // 2,700 parts of 36,500 days each: every part is under 100 years, the sum is not.
        let long = format!("P{}", "36500D".repeat(2700));
        let e = parse_duration_lenient(&long).unwrap_err();
        assert!(e.contains("longer than 100 years"), "{e}");
        assert!(
            parse_duration(&long).is_err(),
            "repeated parts are refused on deploy anyway"
        );
        assert!(parse_duration("P36500DT1H").is_err());
        assert_eq!(parse_duration("P36500D").unwrap(), MAX_SPAN);
    }

    #[test]
    fn parts_out_of_order_repeated_or_a_bare_t_are_refused_on_deploy_but_still_run() {
        for lax in ["PT1S2H", "P1D1D", "P1DT", "PT1M1M", "P1DT1S1M", "P1D2W"] {
            let e = parse_duration(lax).unwrap_err();
            assert!(e.contains("invalid ISO 8601 duration"), "{lax}: {e}");
            // What a stored version holds keeps working as it did.
            assert!(parse_duration_lenient(lax).is_ok(), "{lax}");
        }
        assert_eq!(
            parse_duration("P1W2DT3H4M5S").unwrap(),
            Duration::seconds(788_645)
        );
        assert_eq!(
            parse_duration_lenient("PT1S2H").unwrap(),
            Duration::seconds(7201)
        );
        assert!(parse_cycle(&format!("R3/P{}", "36500D".repeat(3))).is_err());
    }

    #[test]
    fn later_is_checked() {
        let now = chrono::Utc::now();
        assert_eq!(
            later(now, Duration::days(1)).unwrap(),
            now + Duration::days(1)
        );
        assert!(later(now, MAX_SPAN + Duration::milliseconds(1)).is_err());
        assert!(later(chrono::DateTime::<chrono::Utc>::MAX_UTC, Duration::days(1)).is_err());
    }

    #[test]
    fn cycles_parse() {
        assert_eq!(parse_cycle("R3/PT1H").unwrap(), (3, Duration::hours(1)));
        assert!(parse_cycle("R3/PT1S2H").is_err());
        assert_eq!(
            parse_cycle_lenient("R3/PT1S2H").unwrap().1,
            Duration::seconds(7201)
        );
        for bad in ["R/PT1H", "R0/PT1H", "3/PT1H", "R3PT1H", "R3/1H"] {
            assert!(parse_cycle(bad).is_err(), "{bad} accepted");
        }
    }
}

/// A timer start: when instances of a process start by themselves. In JSON
/// `"start_timer": {"cycle": "R/PT1H"}`, `{"date": "2026-12-24T10:00:00Z"}` or
/// `{"duration": "PT10M"}`. Each firing starts one instance (exactly once across engines),
/// with no variables and the due time (RFC 3339) as its business key. A newer version of the
/// process replaces the older one's schedule; firings missed while no engine ran are not made
/// up: one instance starts for them, and the schedule goes on from the next slot to come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartTimer {
    /// `R/PT1H`: every hour for ever, the first an hour after the deploy; `R5/PT1H`: five
    /// times; `R/2026-12-01T08:00:00Z/P1D`: every day from that time. The interval is at
    /// least a second.
    Cycle(String),
    /// Once, at this RFC 3339 date-time.
    Date(String),
    /// Once, this long after the version was deployed.
    Duration(String),
}

/// A [`StartTimer`] read: the first due time, and how it repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartSchedule {
    /// The first firing.
    pub first: chrono::DateTime<chrono::Utc>,
    /// The time between firings (none: it fires once).
    pub every: Option<Duration>,
    /// How many firings in all (none: for ever).
    pub times: Option<u32>,
}

impl StartTimer {
    /// The schedule of a version deployed at `deployed`, or why the timer is not valid.
    pub fn schedule(
        &self,
        deployed: chrono::DateTime<chrono::Utc>,
    ) -> Result<StartSchedule, String> {
        match self {
            StartTimer::Date(d) => {
                let first = literal_date(d)
                    .ok_or_else(|| format!("{} is not an RFC 3339 date-time", quote(d)))?;
                Ok(StartSchedule {
                    first,
                    every: None,
                    times: Some(1),
                })
            }
            StartTimer::Duration(d) => Ok(StartSchedule {
                first: later(deployed, parse_duration(d)?)?,
                every: None,
                times: Some(1),
            }),
            StartTimer::Cycle(c) => {
                let bad = |why: &str| format!("invalid cycle {}: {why}", quote(c));
                let parts: Vec<&str> = c.trim().split('/').collect();
                let (count, start, interval) = match parts.as_slice() {
                    [r, i] => (*r, None, *i),
                    [r, s, i] => (*r, Some(*s), *i),
                    _ => return Err(bad("it must look like R/PT1H, R5/PT1H or R/<date>/PT1H")),
                };
                let times = match count.strip_prefix('R') {
                    Some("") => None,
                    Some(n) => match n.parse::<u32>() {
                        Ok(n) if n > 0 => Some(n),
                        _ => return Err(bad("the repetitions are R (for ever) or R1, R2, ...")),
                    },
                    None => return Err(bad("it must start with R")),
                };
                let every = parse_duration(interval)?;
                if every < Duration::seconds(1) {
                    return Err(bad("the interval must be at least a second"));
                }
                let first = match start {
                    None => later(deployed, every)?,
                    Some(s) => {
                        let at = literal_date(s).ok_or_else(|| {
                            bad("the start between the slashes must be an RFC 3339 date-time")
                        })?;
                        next_slot(at, every, deployed)
                    }
                };
                Ok(StartSchedule {
                    first,
                    every: Some(every),
                    times,
                })
            }
        }
    }
}

impl StartSchedule {
    /// After the firing due at `due`, the `fired`-th, the next due time no earlier than `now`
    /// (slots missed meanwhile are skipped), or none once the schedule is done.
    pub fn next(
        &self,
        due: chrono::DateTime<chrono::Utc>,
        fired: u32,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let every = self.every?;
        if self.times.is_some_and(|t| fired >= t) {
            return None;
        }
        let next = later(due, every).ok()?;
        if next > now {
            return Some(next);
        }
        // Behind: the first slot after now (the missed ones are not made up).
        Some(next_slot(next, every, now + Duration::milliseconds(1)))
    }
}

/// The first of `at`, `at + every`, ... that is no earlier than `now`.
fn next_slot(
    at: chrono::DateTime<chrono::Utc>,
    every: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    if at >= now {
        return at;
    }
    let step = every.num_milliseconds().max(1);
    let behind = (now - at).num_milliseconds();
    let slots = (behind + step - 1) / step;
    at + Duration::milliseconds(slots.saturating_mul(step))
}

#[cfg(test)]
mod start_timer_tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap()
    }

    #[test]
    fn cycles_dates_and_durations_schedule() {
        let hourly = StartTimer::Cycle("R/PT1H".into())
            .schedule(t(8, 0))
            .unwrap();
        assert_eq!(hourly.first, t(9, 0));
        assert_eq!(hourly.next(t(9, 0), 1, t(9, 0)), Some(t(10, 0)));
        // Missed slots are skipped: due 9:00, fired at 12:30, next is 13:00; at 13:00, 14:00.
        assert_eq!(hourly.next(t(9, 0), 1, t(12, 30)), Some(t(13, 0)));
        assert_eq!(hourly.next(t(9, 0), 1, t(13, 0)), Some(t(14, 0)));
        let three = StartTimer::Cycle("R3/PT1H".into())
            .schedule(t(8, 0))
            .unwrap();
        assert_eq!(three.next(t(10, 0), 2, t(10, 0)), Some(t(11, 0)));
        assert_eq!(three.next(t(11, 0), 3, t(11, 0)), None);
        let from = StartTimer::Cycle("R/2026-12-01T06:15:00Z/PT1H".into())
            .schedule(t(8, 0))
            .unwrap();
        assert_eq!(from.first, t(8, 15), "the first slot after the deploy");
        let at = StartTimer::Date("2026-12-24T10:00:00Z".into())
            .schedule(t(8, 0))
            .unwrap();
        assert_eq!(
            (at.first.to_rfc3339(), at.next(at.first, 1, at.first)),
            ("2026-12-24T10:00:00+00:00".to_string(), None)
        );
        let soon = StartTimer::Duration("PT10M".into())
            .schedule(t(8, 0))
            .unwrap();
        assert_eq!(soon.first, t(8, 10));
        for bad in [
            "PT1H",
            "R0/PT1H",
            "R/PT0.5S",
            "R/yesterday/PT1H",
            "Rx/PT1H",
            "R/PT1H/PT1H/x",
        ] {
            assert!(
                StartTimer::Cycle(bad.into()).schedule(t(8, 0)).is_err(),
                "{bad}"
            );
        }
        assert!(StartTimer::Date("tomorrow".into())
            .schedule(t(8, 0))
            .is_err());
    }
}
