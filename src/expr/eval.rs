//! Evaluation: values (JSON, and the date-times, dates and durations functions make),
//! comparison and arithmetic over them.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::{compare_numbers, err, lookup, ArithOp, CmpOp, Expr, ExprError, Func};

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    /// A JSON value (a variable, a literal, a result).
    Json(Value),
    /// A date-time (UTC).
    DateTime(DateTime<Utc>),
    /// A calendar date.
    Date(NaiveDate),
    /// A duration in days and time.
    Duration(chrono::Duration),
}

impl V {
    /// A number from a double (null when it is not finite).
    pub(crate) fn number(f: Option<f64>) -> V {
        V::Json(
            f.and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
        )
    }

    /// Its text (for messages, and `string()`).
    pub(crate) fn show(&self) -> String {
        match self {
            V::Json(Value::String(s)) => s.clone(),
            V::Json(v) => v.to_string(),
            V::DateTime(d) => d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            V::Date(d) => d.format("%Y-%m-%d").to_string(),
            V::Duration(d) => iso_duration(*d),
        }
    }

    /// A date-time, from one or from RFC 3339 text (UTC when it has no offset).
    pub(crate) fn as_date_time(&self) -> Option<DateTime<Utc>> {
        match self {
            V::DateTime(d) => Some(*d),
            V::Json(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                        .ok()
                        .map(|n| n.and_utc())
                }),
            _ => None,
        }
    }
}

/// `P1DT2H3M4S`.
fn iso_duration(d: chrono::Duration) -> String {
    let (sign, d) = if d < chrono::Duration::zero() {
        ("-", -d)
    } else {
        ("", d)
    };
    let secs = d.num_seconds();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let mut out = format!("{sign}P");
    if days > 0 {
        out += &format!("{days}D");
    }
    if rest > 0 || days == 0 {
        out.push('T');
        if h > 0 {
            out += &format!("{h}H");
        }
        if m > 0 {
            out += &format!("{m}M");
        }
        if s > 0 || (h == 0 && m == 0) {
            out += &format!("{s}S");
        }
    }
    out
}

/// How two values order: numbers exactly, text by code point, date-times, dates and durations
/// among themselves (text that reads as a date-time against a date-time); `None` when they do
/// not order.
fn order(x: &V, y: &V) -> Option<Ordering> {
    match (x, y) {
        (V::Json(Value::Number(m)), V::Json(Value::Number(n))) => compare_numbers(m, n),
        (V::Json(Value::String(s)), V::Json(Value::String(t))) => Some(s.cmp(t)),
        (V::Date(a), V::Date(b)) => Some(a.cmp(b)),
        (V::Duration(a), V::Duration(b)) => Some(a.cmp(b)),
        (V::DateTime(_), _) | (_, V::DateTime(_)) => {
            Some(x.as_date_time()?.cmp(&y.as_date_time()?))
        }
        _ => None,
    }
}

/// Whether two values are equal (numbers exactly, `1 == 1.0`).
pub(crate) fn equal(x: &V, y: &V) -> bool {
    match order(x, y) {
        Some(o) => o == Ordering::Equal,
        None => x == y,
    }
}

/// The variables and the clock an expression is evaluated with.
pub(crate) struct Env<'a> {
    pub(crate) vars: &'a Map<String, Value>,
    pub(crate) now: Option<DateTime<Utc>>,
}

impl Expr {
    pub(crate) fn value(&self, env: &Env) -> Result<V, ExprError> {
        Ok(match self {
            Expr::Lit(v, _) => V::Json(v.clone()),
            Expr::Path(p, _) => V::Json(lookup(env.vars, p).cloned().unwrap_or(Value::Null)),
            Expr::List(items, _) => V::Json(Value::Array(
                items
                    .iter()
                    .map(|i| match i.value(env)? {
                        V::Json(v) => Ok(v),
                        other => Ok(Value::String(other.show())),
                    })
                    .collect::<Result<_, ExprError>>()?,
            )),
            Expr::Not(e, col) => match e.value(env)? {
                V::Json(Value::Bool(b)) => V::Json(Value::Bool(!b)),
                other => return err(*col, format!("`!` needs a boolean, found {}", other.show())),
            },
            Expr::Neg(e, col) => match e.value(env)? {
                V::Json(Value::Number(n)) => match n.as_i64() {
                    Some(i) => V::Json(i.checked_neg().map_or(Value::Null, Value::from)),
                    None => V::number(n.as_f64().map(|f| -f)),
                },
                V::Duration(d) => V::Duration(-d),
                V::Json(Value::Null) => V::Json(Value::Null),
                other => return err(*col, format!("`-` needs a number, found {}", other.show())),
            },
            Expr::And(a, b) => V::Json(Value::Bool(a.boolean(env, "&&")? && b.boolean(env, "&&")?)),
            Expr::Or(a, b) => V::Json(Value::Bool(a.boolean(env, "||")? || b.boolean(env, "||")?)),
            Expr::Call(Func::IsDefined, args, _) => match &args[0] {
                // Whether the variable exists, even if it holds null.
                Expr::Path(p, _) => V::Json(lookup(env.vars, p).is_some().into()),
                other => V::Json((!matches!(other.value(env)?, V::Json(Value::Null))).into()),
            },
            Expr::Call(f, args, col) => {
                let args = args
                    .iter()
                    .map(|a| a.value(env))
                    .collect::<Result<_, _>>()?;
                f.apply(args, env.now, *col)?
            }
            Expr::Arith(op, a, b, col) => arith(*op, a.value(env)?, b.value(env)?, *col)?,
            Expr::Cmp(op, a, b, col) => {
                let (x, y) = (a.value(env)?, b.value(env)?);
                let ord = order(&x, &y);
                let result = match op {
                    CmpOp::Eq => equal(&x, &y),
                    CmpOp::Ne => !equal(&x, &y),
                    _ => {
                        let Some(o) = ord else {
                            return err(
                                *col,
                                format!(
                                    "`{}` compares numbers, text, dates or durations, found {} and {}",
                                    op.as_str(),
                                    x.show(),
                                    y.show()
                                ),
                            );
                        };
                        match op {
                            CmpOp::Lt => o.is_lt(),
                            CmpOp::Le => o.is_le(),
                            CmpOp::Gt => o.is_gt(),
                            _ => o.is_ge(),
                        }
                    }
                };
                V::Json(Value::Bool(result))
            }
        })
    }

    fn boolean(&self, env: &Env, op: &str) -> Result<bool, ExprError> {
        match self.value(env)? {
            V::Json(Value::Bool(b)) => Ok(b),
            other => err(
                self.column(),
                format!("`{op}` needs booleans, found {}", other.show()),
            ),
        }
    }
}

/// `x op y`: numbers (integers stay integers while they fit), text joined with `+`,
/// date-times and dates moved by durations, the duration between two of them, durations
/// added, or scaled by a number. With null on either side, null (as FEEL has it).
fn arith(op: ArithOp, x: V, y: V, col: usize) -> Result<V, ExprError> {
    use ArithOp::*;
    let days = |d: chrono::Duration| d.num_seconds() % 86_400 == 0;
    Ok(match (op, x, y) {
        (_, V::Json(Value::Null), _) | (_, _, V::Json(Value::Null)) => V::Json(Value::Null),
        (op, V::Json(Value::Number(m)), V::Json(Value::Number(n))) => {
            if let (Some(a), Some(b)) = (m.as_i64(), n.as_i64()) {
                let exact = match op {
                    Add => a.checked_add(b),
                    Sub => a.checked_sub(b),
                    Mul => a.checked_mul(b),
                    Div if b != 0 && a % b == 0 => a.checked_div(b),
                    Div => None,
                };
                if let Some(r) = exact {
                    return Ok(V::Json(r.into()));
                }
            }
            let (a, b) = (
                m.as_f64().unwrap_or(f64::NAN),
                n.as_f64().unwrap_or(f64::NAN),
            );
            if op == Div && b == 0.0 {
                return err(col, "division by zero");
            }
            V::number(Some(match op {
                Add => a + b,
                Sub => a - b,
                Mul => a * b,
                Div => a / b,
            }))
        }
        (Add, V::Json(Value::String(s)), V::Json(Value::String(t))) => {
            V::Json(Value::String(s + &t))
        }
        (Add | Sub, V::DateTime(t), V::Duration(d)) => {
            let d = if op == Sub { -d } else { d };
            match t.checked_add_signed(d) {
                Some(t) => V::DateTime(t),
                None => return err(col, "the date-time is out of range"),
            }
        }
        (Add, V::Duration(d), V::DateTime(t)) => match t.checked_add_signed(d) {
            Some(t) => V::DateTime(t),
            None => return err(col, "the date-time is out of range"),
        },
        (Add | Sub, V::Date(t), V::Duration(d)) => {
            let d = if op == Sub { -d } else { d };
            let at = t
                .and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .checked_add_signed(d);
            match at {
                Some(at) if days(d) => V::Date(at.date_naive()),
                Some(at) => V::DateTime(at),
                None => return err(col, "the date is out of range"),
            }
        }
        (Sub, V::Date(a), V::Date(b)) => V::Duration(a - b),
        (Add | Sub, V::Duration(a), V::Duration(b)) => {
            V::Duration(if op == Add { a + b } else { a - b })
        }
        (Mul, V::Duration(d), V::Json(Value::Number(n)))
        | (Mul, V::Json(Value::Number(n)), V::Duration(d)) => {
            match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(n) => V::Duration(d * n),
                None => return err(col, "a duration is multiplied by a whole number"),
            }
        }
        (Div, V::Duration(d), V::Json(Value::Number(n))) => {
            match n.as_i64().and_then(|n| i32::try_from(n).ok()) {
                Some(0) => return err(col, "division by zero"),
                Some(n) => V::Duration(d / n),
                None => return err(col, "a duration is divided by a whole number"),
            }
        }
        (Sub, a, b) if a.as_date_time().is_some() && b.as_date_time().is_some() => {
            let (a, b) = (
                a.as_date_time().unwrap_or_default(),
                b.as_date_time().unwrap_or_default(),
            );
            V::Duration(a - b)
        }
        (op, a, b) => {
            return err(
                col,
                format!(
                    "`{}` cannot join {} and {}",
                    op.as_str(),
                    a.show(),
                    b.show()
                ),
            )
        }
    })
}
