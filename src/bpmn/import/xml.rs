//! Reading BPMN XML: element tests, extension attributes, and FEEL as longrun's expressions.

use super::super::{BPMN_NS, LONGRUN_NS, ZEEBE_NS};
use super::{Xn, CAMUNDA7_NS};
use crate::definition::{Output, TimerSpec};

pub(super) fn is_bpmn(n: &Xn, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(BPMN_NS) && n.tag_name().name() == name
}

pub(super) fn child<'a>(n: Xn<'a>, name: &str) -> Option<Xn<'a>> {
    n.children().find(|c| is_bpmn(c, name))
}

pub(super) fn ext<'a>(n: Xn<'a>, ns: &str, name: &str) -> Option<Xn<'a>> {
    n.descendants().find(|c| {
        c.is_element() && c.tag_name().namespace() == Some(ns) && c.tag_name().name() == name
    })
}

pub(super) fn lr<'a>(n: Xn<'a>, attr: &str) -> Option<&'a str> {
    n.attribute((LONGRUN_NS, attr))
}

/// A BPMN `timeDate`: a literal ISO 8601 date-time (`2026-12-24T10:00:00Z`), or an
/// expression: `=deadline` (a variable) or `=date and time("2026-12-24T10:00:00Z")`.
pub(super) fn time_date(text: &str) -> Option<TimerSpec> {
    let text = text.trim();
    match text.strip_prefix('=') {
        None => crate::definition::literal_date(text).map(|_| TimerSpec::Until(text.to_string())),
        Some(expr) => {
            let expr = expr.trim();
            let inner = expr
                .strip_prefix("date and time(")
                .and_then(|r| r.strip_suffix(')'))
                .map(|q| q.trim().trim_matches(|c| c == '"' || c == '\''));
            match inner {
                Some(date) => crate::definition::literal_date(date)
                    .map(|_| TimerSpec::Until(date.to_string())),
                None if !expr.is_empty()
                    && expr
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-')) =>
                {
                    Some(TimerSpec::Until(expr.to_string()))
                }
                None => None,
            }
        }
    }
}

/// A FEEL-style expression (`=orderId`) as a bare variable path or condition.
pub(super) fn feel(s: &str) -> String {
    s.trim()
        .strip_prefix('=')
        .unwrap_or(s.trim())
        .trim()
        .to_string()
}

/// A FEEL condition in longrun's expression language: FEEL writes equality as `=`, longrun as
/// `==` (other operators, `and`, `or`, `not`, literals and paths are the same).
pub(in crate::bpmn) fn feel_condition(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 4);
    let mut quote: Option<char> = None;
    for (i, &c) in chars.iter().enumerate() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '=' => {
                let prev = i.checked_sub(1).map(|j| chars[j]);
                let next = chars.get(i + 1).copied();
                if matches!(prev, Some('!' | '<' | '>' | '=')) || next == Some('=') {
                    out.push('=');
                } else {
                    out.push_str("==");
                }
            }
            None => out.push(c),
        }
    }
    out
}

/// A name written in an attribute as a literal (`charge`) or as a FEEL string literal
/// (`="charge"`): the name, or `None` when it is an expression (`=x`), chosen at run time.
pub(super) fn literal_name(text: &str) -> Option<&str> {
    match text.trim().strip_prefix('=') {
        None => Some(text.trim()),
        Some(expr) => expr
            .trim()
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .filter(|e| !e.contains('"')),
    }
}

/// A task's handler: `zeebe:taskDefinition type`, or Camunda 7's `camunda:topic` (an
/// external task), `camunda:class` (the class name is the handler's name) or
/// `camunda:delegateExpression="${bean}"` (the bean's name is).
pub(super) fn handler_of(n: Xn) -> Option<String> {
    ext(n, ZEEBE_NS, "taskDefinition")
        .and_then(|t| t.attribute("type"))
        .or(n.attribute((CAMUNDA7_NS, "topic")))
        .or(n.attribute((CAMUNDA7_NS, "class")))
        .map(str::to_string)
        .or_else(|| {
            let e = n.attribute((CAMUNDA7_NS, "delegateExpression"))?.trim();
            let bean = e
                .strip_prefix("${")
                .or(e.strip_prefix("#{"))?
                .strip_suffix('}')?
                .trim();
            let plain = !bean.is_empty()
                && bean
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'));
            plain.then(|| bean.to_string())
        })
        .or_else(|| {
            // `${claims.pay(execution)}` or `${claims.pay}`: the method it calls names the
            // handler (`claims.pay`); its arguments are the engine's, not the handler's.
            let e = n.attribute((CAMUNDA7_NS, "expression"))?.trim();
            let inner = e
                .strip_prefix("${")
                .or(e.strip_prefix("#{"))?
                .strip_suffix('}')?
                .trim();
            let path = match inner.split_once('(') {
                Some((path, rest)) if rest.ends_with(')') && !rest.contains('(') => path.trim(),
                Some(_) => return None,
                None => inner,
            };
            let plain = path.contains('.')
                && !path.starts_with('.')
                && !path.ends_with('.')
                && path
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.'));
            plain.then(|| path.to_string())
        })
}

/// A Camunda 7 (JUEL) condition, `${amount > 100 && vip}`, in longrun's expression language:
/// the braces go and the word operators `gt lt ge le eq ne` become symbols (`and`, `or`, `not`
/// are longrun's too). Anything else is left as it is, for the expression parser to accept
/// or refuse at its column. A condition that is not JUEL is returned unchanged.
pub(super) fn juel_condition(s: &str) -> String {
    let t = s.trim();
    let Some(inner) = t
        .strip_prefix("${")
        .or(t.strip_prefix("#{"))
        .and_then(|r| r.strip_suffix('}'))
    else {
        return s.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut quote: Option<char> = None;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(match word.as_str() {
            "gt" => ">",
            "lt" => "<",
            "ge" => ">=",
            "le" => "<=",
            "eq" => "==",
            "ne" => "!=",
            w => w,
        });
        word.clear();
    };
    for c in inner.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c.is_alphanumeric() || c == '_' || c == '.' => word.push(c),
            None => {
                flush(&mut word, &mut out);
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    flush(&mut word, &mut out);
    out.trim().to_string()
}

/// Where a step's result goes: `longrun:output`, else merged into the variables.
pub(super) fn output_of(n: Xn) -> Output {
    lr(n, "output")
        .map(|v| Output::Variable(v.to_string()))
        .unwrap_or_default()
}

/// A comma-separated list attribute.
pub(super) fn list_of(v: Option<&str>) -> Option<Vec<String>> {
    v.map(|s| {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    })
}
