//! The built-in functions, a fixed set of pure ones as FEEL names them (`count(items)`,
//! `starts with(name, "A")`, `date and time("2026-05-01T08:00:00Z")`): no user-defined
//! functions, none that loops over anything but one list it is given.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::eval::{equal, V};
use super::{err, ExprError, Type};

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `string(x)`: its text.
    String,
    /// `number(text)`: the number a text holds (null if none).
    Number,
    /// `count(list)`.
    Count,
    /// `sum(list)` of numbers.
    Sum,
    /// `min(list)` of numbers.
    Min,
    /// `max(list)` of numbers.
    Max,
    /// `contains(text, part)`.
    Contains,
    /// `starts with(text, prefix)`.
    StartsWith,
    /// `ends with(text, suffix)`.
    EndsWith,
    /// `upper case(text)`.
    UpperCase,
    /// `lower case(text)`.
    LowerCase,
    /// `string length(text)`.
    StringLength,
    /// `is defined(path)`: whether the variable exists (even if null).
    IsDefined,
    /// `list contains(list, value)`.
    ListContains,
    /// `abs(n)`.
    Abs,
    /// `floor(n)`.
    Floor,
    /// `ceiling(n)`.
    Ceiling,
    /// `now()`: the engine's clock (the same for the whole decision).
    Now,
    /// `today()`: the engine's clock's date (UTC).
    Today,
    /// `date and time(text)`: an RFC 3339 date-time (UTC when it has no offset).
    DateAndTime,
    /// `date(text)`: a calendar date (`2026-05-01`).
    Date,
    /// `duration(text)`: an ISO 8601 duration in days and time (`P1DT12H`).
    Duration,
}

impl Func {
    /// Every function with its name and number of arguments; names with spaces are written
    /// with single spaces.
    pub const ALL: [(Func, &'static str, usize); 22] = [
        (Func::DateAndTime, "date and time", 1),
        (Func::StringLength, "string length", 1),
        (Func::ListContains, "list contains", 2),
        (Func::StartsWith, "starts with", 2),
        (Func::EndsWith, "ends with", 2),
        (Func::UpperCase, "upper case", 1),
        (Func::LowerCase, "lower case", 1),
        (Func::IsDefined, "is defined", 1),
        (Func::String, "string", 1),
        (Func::Number, "number", 1),
        (Func::Count, "count", 1),
        (Func::Sum, "sum", 1),
        (Func::Min, "min", 1),
        (Func::Max, "max", 1),
        (Func::Contains, "contains", 2),
        (Func::Abs, "abs", 1),
        (Func::Floor, "floor", 1),
        (Func::Ceiling, "ceiling", 1),
        (Func::Now, "now", 0),
        (Func::Today, "today", 0),
        (Func::Date, "date", 1),
        (Func::Duration, "duration", 1),
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        Func::ALL
            .iter()
            .find(|(f, ..)| *f == self)
            .map_or("?", |(_, n, _)| n)
    }

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        Func::ALL
            .iter()
            .find(|(f, ..)| *f == self)
            .map_or(0, |(.., a)| *a)
    }

    /// The type of its result, for the type check at deploy.
    pub(super) fn result_type(self) -> Type {
        match self {
            Func::String | Func::UpperCase | Func::LowerCase => Type::String,
            Func::Number
            | Func::Count
            | Func::Sum
            | Func::Min
            | Func::Max
            | Func::StringLength
            | Func::Abs
            | Func::Floor
            | Func::Ceiling => Type::Number,
            Func::Contains
            | Func::StartsWith
            | Func::EndsWith
            | Func::IsDefined
            | Func::ListContains => Type::Boolean,
            Func::Now | Func::Today | Func::DateAndTime | Func::Date | Func::Duration => Type::Any,
        }
    }

    /// Apply it to its evaluated arguments (`is defined` is decided by the caller).
    pub(super) fn apply(
        self,
        args: Vec<V>,
        now: Option<DateTime<Utc>>,
        col: usize,
    ) -> Result<V, ExprError> {
        let name = self.name();
        let text = |v: &V| -> Result<String, ExprError> {
            match v {
                V::Json(Value::String(s)) => Ok(s.clone()),
                other => err(col, format!("`{name}` needs text, found {}", other.show())),
            }
        };
        let list = |v: &V| -> Result<Vec<Value>, ExprError> {
            match v {
                V::Json(Value::Array(a)) => Ok(a.clone()),
                other => err(
                    col,
                    format!("`{name}` needs a list, found {}", other.show()),
                ),
            }
        };
        let number = |v: &Value| -> Result<f64, ExprError> {
            v.as_f64().ok_or_else(|| super::ExprError {
                column: col,
                message: format!("`{name}` needs numbers, found {v}"),
            })
        };
        let clock = || {
            now.ok_or_else(|| super::ExprError {
                column: col,
                message: format!(
                    "`{name}()` reads the engine's clock, which this evaluation has not got"
                ),
            })
        };
        let arg = |i: usize| &args[i];
        Ok(match self {
            Func::String => match arg(0) {
                V::Json(Value::Null) => V::Json(Value::Null),
                V::Json(Value::String(s)) => V::Json(Value::String(s.clone())),
                v => V::Json(Value::String(v.show())),
            },
            Func::Number => match arg(0) {
                V::Json(Value::Number(n)) => V::Json(Value::Number(n.clone())),
                V::Json(Value::String(s)) => {
                    let s = s.trim();
                    match s.parse::<i64>() {
                        Ok(i) => V::Json(i.into()),
                        Err(_) => s
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map_or(V::Json(Value::Null), |n| V::Json(Value::Number(n))),
                    }
                }
                _ => V::Json(Value::Null),
            },
            Func::Count => V::Json(list(arg(0))?.len().into()),
            Func::Sum | Func::Min | Func::Max => {
                let items = list(arg(0))?;
                if items.iter().all(|v| v.is_i64()) {
                    let mut ints = items.iter().filter_map(Value::as_i64);
                    let r = match self {
                        Func::Sum => ints.try_fold(0i64, |a, b| a.checked_add(b)),
                        Func::Min => ints.min(),
                        _ => ints.max(),
                    };
                    match r {
                        Some(r) => V::Json(r.into()),
                        None if items.is_empty() => V::Json(Value::Null),
                        None => return err(col, "the sum does not fit in 64 bits"),
                    }
                } else {
                    let nums = items.iter().map(number).collect::<Result<Vec<_>, _>>()?;
                    let r = match self {
                        Func::Sum => Some(nums.iter().sum()),
                        Func::Min => nums.iter().copied().reduce(f64::min),
                        _ => nums.iter().copied().reduce(f64::max),
                    };
                    V::number(r)
                }
            }
            Func::Contains => V::Json(text(arg(0))?.contains(&text(arg(1))?).into()),
            Func::StartsWith => V::Json(text(arg(0))?.starts_with(&text(arg(1))?).into()),
            Func::EndsWith => V::Json(text(arg(0))?.ends_with(&text(arg(1))?).into()),
            Func::UpperCase => V::Json(text(arg(0))?.to_uppercase().into()),
            Func::LowerCase => V::Json(text(arg(0))?.to_lowercase().into()),
            Func::StringLength => V::Json(text(arg(0))?.chars().count().into()),
            Func::IsDefined => V::Json((!matches!(arg(0), V::Json(Value::Null))).into()),
            Func::ListContains => {
                let items = list(arg(0))?;
                V::Json(
                    items
                        .iter()
                        .any(|i| equal(&V::Json(i.clone()), arg(1)))
                        .into(),
                )
            }
            Func::Abs | Func::Floor | Func::Ceiling => match arg(0) {
                V::Json(Value::Number(n)) if n.is_i64() => {
                    let i = n.as_i64().unwrap_or_default();
                    match self {
                        Func::Abs => V::Json(i.checked_abs().map_or(Value::Null, Value::from)),
                        _ => V::Json(i.into()),
                    }
                }
                V::Json(Value::Number(n)) => {
                    let f = n.as_f64().unwrap_or_default();
                    V::number(Some(match self {
                        Func::Abs => f.abs(),
                        Func::Floor => f.floor(),
                        _ => f.ceil(),
                    }))
                }
                V::Duration(d) if self == Func::Abs => V::Duration(d.abs()),
                other => {
                    return err(
                        col,
                        format!("`{name}` needs a number, found {}", other.show()),
                    )
                }
            },
            Func::Now => V::DateTime(clock()?),
            Func::Today => V::Date(clock()?.date_naive()),
            Func::DateAndTime => match arg(0) {
                V::DateTime(d) => V::DateTime(*d),
                V::Date(d) => V::DateTime(d.and_time(chrono::NaiveTime::MIN).and_utc()),
                v => match v.as_date_time() {
                    Some(d) => V::DateTime(d),
                    None => {
                        return err(
                            col,
                            format!("`{name}` needs an RFC 3339 date-time, found {}", v.show()),
                        )
                    }
                },
            },
            Func::Date => match arg(0) {
                V::Date(d) => V::Date(*d),
                V::DateTime(d) => V::Date(d.date_naive()),
                v => match text(v).ok().and_then(|t| {
                    NaiveDate::parse_from_str(t.get(..10).unwrap_or(&t), "%Y-%m-%d").ok()
                }) {
                    Some(d) => V::Date(d),
                    None => {
                        return err(
                            col,
                            format!("`{name}` needs a date (2026-05-01), found {}", v.show()),
                        )
                    }
                },
            },
            Func::Duration => match arg(0) {
                V::Duration(d) => V::Duration(*d),
                v => {
                    let t = text(v)?;
                    match crate::definition::parse_duration(&t) {
                        Ok(d) => V::Duration(d),
                        Err(e) => return err(col, format!("`{name}(\"{t}\")`: {e}")),
                    }
                }
            },
        })
    }
}
