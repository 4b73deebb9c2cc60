//! The condition language of gateways and completion conditions: small and safe by
//! construction, with FEEL's arithmetic and a fixed set of its built-in functions.
//!
//! ```text
//! payment.amount > 1000 && customer.vip == true
//! status != "cancelled" || !(retries >= 3)
//! card.expires_at == null
//! count(items) > 3 and starts with(upper case(country), "DE")
//! date and time(order.placed_at) + duration("P14D") < now()
//! ```
//!
//! An expression has literals (numbers, `"strings"` or `'strings'`, `true`, `false`, `null`,
//! lists `[1, 2]`), paths into the instance variables (`payment.amount`), arithmetic
//! (`+ - * /`, `+` also joins text; a `-` between two names needs spaces, since `a-b` is a
//! name), comparisons (`== != < <= > >=`), boolean logic (`&&`, `||`, `!`, also spelled `and`,
//! `or`, `not`), parentheses and calls of the built-in functions ([`Func`]): `string`,
//! `number`, `count`, `sum`, `min`, `max`, `contains`, `starts with`, `ends with`, `upper
//! case`, `lower case`, `string length`, `is defined`, `list contains`, `abs`, `floor`,
//! `ceiling`, `now`, `today`, `date and time`, `date` and `duration`. Date-times, dates and
//! durations compare and add as FEEL's do (a date-time minus a date-time is a duration); text
//! in RFC 3339 compares with a date-time. `now()` and `today()` read the engine's clock of the
//! decision, so a decision replays the same. There are no loops, no user-defined functions
//! and no assignments, and an expression is at most [`MAX_LEN`] characters and [`MAX_NODES`]
//! nodes, so evaluating one is bounded by its size and its variables'.
//!
//! A leading `=` is allowed (the modeler's FEEL style, `=amount > 1000`).
//!
//! Expressions are parsed and type-checked when a definition is validated: a syntax error names
//! its column; where the definition declares variable types, a path that is not declared, or a
//! comparison between values of different types, is refused before anything is deployed.
//! At run time a path that is absent reads as `null`; ordering (`<`, `>`, ...) applies to two
//! values of one kind, anything else is an evaluation error; arithmetic with `null` is `null`.

use std::collections::BTreeMap;
use std::fmt;

mod eval;
mod func;
mod parse;

pub use func::Func;

use parse::parse;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest expression text accepted, in characters.
pub const MAX_LEN: usize = 1024;
/// The most nodes (literals, paths, operators) an expression may have.
pub const MAX_NODES: usize = 64;
/// The deepest nesting accepted.
pub const MAX_DEPTH: usize = 16;

/// The type of a declared variable, or of a sub-expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Type {
    /// A JSON number.
    Number,
    /// A JSON string.
    String,
    /// `true` or `false`.
    Boolean,
    /// A JSON object whose fields are not declared: any path below it is allowed, untyped.
    Object,
    /// Not known (no declarations, or below an undeclared object).
    Any,
    /// The `null` literal: comparable with anything for equality.
    Null,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Number => "number",
            Type::String => "string",
            Type::Boolean => "boolean",
            Type::Object => "object",
            Type::Any => "any",
            Type::Null => "null",
        })
    }
}

/// Why an expression was refused (at parse or type check) or could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (column {column})")]
pub struct ExprError {
    /// 1-based column (in characters) where the problem is.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

fn err<T>(column: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        column,
        message: message.into(),
    })
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

impl ArithOp {
    fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

/// A parsed expression. Each node keeps the column it starts at, for messages.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal value.
    Lit(Value, usize),
    /// A path into the variables.
    Path(String, usize),
    /// `!e`
    Not(Box<Expr>, usize),
    /// `a && b`
    And(Box<Expr>, Box<Expr>),
    /// `a || b`
    Or(Box<Expr>, Box<Expr>),
    /// `a op b`
    Cmp(CmpOp, Box<Expr>, Box<Expr>, usize),
    /// `a + b`, `a - b`, `a * b`, `a / b`
    Arith(ArithOp, Box<Expr>, Box<Expr>, usize),
    /// `-e`
    Neg(Box<Expr>, usize),
    /// `[a, b]`
    List(Vec<Expr>, usize),
    /// A built-in function's call.
    Call(Func, Vec<Expr>, usize),
}

impl Expr {
    /// Parse an expression, enforcing the size budget.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let chars: Vec<char> = text.chars().collect();
        if chars.len() > MAX_LEN {
            return err(
                MAX_LEN + 1,
                format!(
                    "the expression is {} characters long; at most {MAX_LEN} are allowed",
                    chars.len()
                ),
            );
        }
        parse(&chars)
    }

    fn column(&self) -> usize {
        match self {
            Expr::Lit(_, c)
            | Expr::Path(_, c)
            | Expr::Not(_, c)
            | Expr::Cmp(_, _, _, c)
            | Expr::Arith(_, _, _, c)
            | Expr::Neg(_, c)
            | Expr::List(_, c)
            | Expr::Call(_, _, c) => *c,
            Expr::And(a, _) | Expr::Or(a, _) => a.column(),
        }
    }

    /// Check the expression's types against the declared variables (none declared: every
    /// path is of unknown type). The whole expression must be a boolean.
    pub fn check(&self, declared: &BTreeMap<String, Type>) -> Result<(), ExprError> {
        match self.type_of(declared)? {
            Type::Boolean | Type::Any => Ok(()),
            t => err(
                self.column(),
                format!("a condition must be true or false, but this is a {t}"),
            ),
        }
    }

    fn type_of(&self, declared: &BTreeMap<String, Type>) -> Result<Type, ExprError> {
        match self {
            Expr::Lit(v, _) => Ok(match v {
                Value::Null => Type::Null,
                Value::Bool(_) => Type::Boolean,
                Value::Number(_) => Type::Number,
                Value::String(_) => Type::String,
                _ => Type::Any,
            }),
            Expr::Path(p, col) => path_type(p, *col, declared),
            Expr::Not(e, col) => match e.type_of(declared)? {
                Type::Boolean | Type::Any => Ok(Type::Boolean),
                t => err(*col, format!("`!` needs a boolean, not a {t}")),
            },
            Expr::And(a, b) | Expr::Or(a, b) => {
                let op = if matches!(self, Expr::And(..)) {
                    "&&"
                } else {
                    "||"
                };
                for side in [a, b] {
                    match side.type_of(declared)? {
                        Type::Boolean | Type::Any => {}
                        t => {
                            return err(
                                side.column(),
                                format!("`{op}` needs booleans on both sides, not a {t}"),
                            )
                        }
                    }
                }
                Ok(Type::Boolean)
            }
            Expr::List(items, _) => {
                for i in items {
                    i.type_of(declared)?;
                }
                Ok(Type::Any)
            }
            Expr::Call(f, args, _) => {
                for a in args {
                    a.type_of(declared)?;
                }
                Ok(f.result_type())
            }
            Expr::Neg(e, col) => match e.type_of(declared)? {
                Type::Number => Ok(Type::Number),
                Type::Any | Type::Null => Ok(Type::Any),
                t => err(*col, format!("`-` needs a number, not a {t}")),
            },
            Expr::Arith(op, a, b, col) => {
                let (ta, tb) = (a.type_of(declared)?, b.type_of(declared)?);
                for (side, t) in [(a, ta), (b, tb)] {
                    if matches!(t, Type::Boolean | Type::Object) {
                        return err(
                            side.column(),
                            format!(
                                "`{}` works on numbers, text, dates and durations, not a {t}",
                                op.as_str()
                            ),
                        );
                    }
                }
                Ok(match (ta, tb) {
                    (Type::Number, Type::Number) => Type::Number,
                    (Type::String, Type::String) if *op == ArithOp::Add => Type::String,
                    (Type::Any | Type::Null, _) | (_, Type::Any | Type::Null) => Type::Any,
                    _ => {
                        return err(
                            *col,
                            format!("`{}` cannot join a {ta} and a {tb}", op.as_str()),
                        )
                    }
                })
            }
            Expr::Cmp(op, a, b, col) => {
                let (ta, tb) = (a.type_of(declared)?, b.type_of(declared)?);
                let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
                for (side, t) in [(a, ta), (b, tb)] {
                    if ordering && matches!(t, Type::Boolean | Type::Null | Type::Object) {
                        return err(
                            side.column(),
                            format!("`{}` compares numbers or strings, not a {t}", op.as_str()),
                        );
                    }
                }
                let known = |t: Type| !matches!(t, Type::Any | Type::Null);
                if known(ta) && known(tb) && ta != tb {
                    return err(
                        *col,
                        format!(
                            "`{}` compares a {ta} with a {tb}; both sides must be of one type",
                            op.as_str()
                        ),
                    );
                }
                Ok(Type::Boolean)
            }
        }
    }

    /// Evaluate the expression as a condition over the variables (without a clock: `now()`
    /// and `today()` are errors; the engine evaluates with [`Expr::eval_at`]).
    pub fn eval(&self, vars: &Map<String, Value>) -> Result<bool, ExprError> {
        self.eval_with(vars, None)
    }

    /// Evaluate the expression as a condition over the variables, with `now()` and `today()`
    /// reading `now` (the engine's clock of the decision).
    pub fn eval_at(
        &self,
        vars: &Map<String, Value>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, ExprError> {
        self.eval_with(vars, Some(now))
    }

    /// Evaluate the expression to a value (a mapping's source): date-times, dates and
    /// durations come out as their ISO 8601 text.
    pub fn value_at(
        &self,
        vars: &Map<String, Value>,
        now: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Value, ExprError> {
        Ok(match self.value(&eval::Env { vars, now })? {
            eval::V::Json(v) => v,
            other => Value::String(other.show()),
        })
    }

    fn eval_with(
        &self,
        vars: &Map<String, Value>,
        now: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<bool, ExprError> {
        match self.value(&eval::Env { vars, now })? {
            eval::V::Json(Value::Bool(b)) => Ok(b),
            other => err(
                self.column(),
                format!("the condition is {}, not true or false", other.show()),
            ),
        }
    }
}

/// The declared type of a path: its own declaration, or `any` below a declared object;
/// an error when declarations exist and neither applies.
fn path_type(path: &str, col: usize, declared: &BTreeMap<String, Type>) -> Result<Type, ExprError> {
    if declared.is_empty() {
        return Ok(Type::Any);
    }
    if let Some(t) = declared.get(path) {
        return Ok(*t);
    }
    let mut prefix = path;
    while let Some(i) = prefix.rfind('.') {
        prefix = &prefix[..i];
        match declared.get(prefix) {
            Some(Type::Object | Type::Any) => return Ok(Type::Any),
            Some(t) => {
                return err(
                    col,
                    format!("`{prefix}` is declared a {t}; it has no field for `{path}`"),
                )
            }
            None => {}
        }
    }
    err(
        col,
        format!("unknown variable `{path}` (not in the definition's `variables`)"),
    )
}

/// Order two JSON numbers exactly: integers as integers (so 2^53 + 1 is more than 2^53),
/// an integer against a fraction without rounding the integer, fractions as doubles. `None`
/// for NaN (which JSON cannot hold anyway).
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<std::cmp::Ordering> {
    fn int(n: &serde_json::Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        (Some(x), None) => int_against_float(x, b.as_f64()?),
        (None, Some(y)) => int_against_float(y, a.as_f64()?).map(std::cmp::Ordering::reverse),
        (None, None) => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// `i` against `f`, exactly.
fn int_against_float(i: i128, f: f64) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering::*;
    if f.is_nan() {
        return None;
    }
    // Every 64-bit integer lies well inside ±1e30.
    if f >= 1e30 {
        return Some(Less);
    }
    if f <= -1e30 {
        return Some(Greater);
    }
    let floor = f.floor();
    match i.cmp(&(floor as i128)) {
        Equal if f > floor => Some(Less),
        o => Some(o),
    }
}

/// Read a dot path (`order.id`) out of a JSON object.
pub fn lookup<'a>(
    vars: &'a serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<&'a serde_json::Value> {
    let mut parts = path.split('.');
    let mut cur = vars.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

#[cfg(test)]
mod tests;
