//! `zeebe:ioMapping` and Camunda 7's `camunda:inputOutput` as a step's input and output
//! mappings.

use super::xml::{ext, feel_condition, juel_condition};
use super::{ImportError, Importer, Xn};
use crate::bpmn::ZEEBE_NS;
use crate::definition::{Mapping, StepKind};

fn is_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}

impl<'a> Importer<'a> {
    /// A step's `zeebe:input` and `zeebe:output` mappings, each checked (a variable path or a
    /// literal as the source, a variable name as the target).
    pub(super) fn io_of(&self, n: Xn<'a>) -> Result<(Vec<Mapping>, Vec<Mapping>), ImportError> {
        if let Some(io) = ext(n, super::CAMUNDA7_NS, "inputOutput") {
            return self.camunda_io(io);
        }
        let Some(io) = ext(n, ZEEBE_NS, "ioMapping") else {
            return Ok((Vec::new(), Vec::new()));
        };
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for m in io.children().filter(|c| c.is_element()) {
            let list = match m.tag_name().name() {
                "input" => &mut inputs,
                "output" => &mut outputs,
                _ => continue,
            };
            let (Some(source), Some(target)) = (m.attribute("source"), m.attribute("target"))
            else {
                return self.fail(m, "a mapping needs a source and a target");
            };
            // A FEEL expression as a source, in longrun's spelling (`=` compares as `==`).
            let source = match source.trim().strip_prefix('=') {
                Some(e) if !is_path(e.trim()) => format!("={}", feel_condition(e.trim())),
                _ => source.trim().to_string(),
            };
            let mapping = Mapping::new(source, target.trim());
            if let Err(e) = mapping.check(&is_path) {
                return self.fail(m, e);
            }
            list.push(mapping);
        }
        Ok((inputs, outputs))
    }

    /// Camunda 7's `inputParameter` and `outputParameter`: a literal text, `${path}` or a
    /// JUEL expression; a script, a list or a map is refused.
    fn camunda_io(&self, io: Xn<'a>) -> Result<(Vec<Mapping>, Vec<Mapping>), ImportError> {
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for m in io.children().filter(|c| c.is_element()) {
            let list = match m.tag_name().name() {
                "inputParameter" => &mut inputs,
                "outputParameter" => &mut outputs,
                _ => continue,
            };
            let Some(target) = m.attribute("name") else {
                return self.fail(m, "a parameter needs a name");
            };
            if m.children().any(|c| c.is_element()) {
                return self.fail(
                    m,
                    "a script, list or map parameter is not run by longrun: give a literal or ${path}",
                );
            }
            let text = m.text().unwrap_or("").trim();
            let source = match text.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                Some(path) if is_path(path.trim()) => format!("={}", path.trim()),
                // A JUEL expression, in longrun's spelling.
                Some(_) => format!("={}", juel_condition(text)),
                None if text.contains("${") || text.contains("#{") => {
                    return self.fail(
                        m,
                        format!("`{text}` mixes text and an expression; longrun reads a literal or ${{path}}"),
                    )
                }
                None => text.to_string(),
            };
            let mapping = Mapping::new(source, target.trim());
            if let Err(e) = mapping.check(&is_path) {
                return self.fail(m, e);
            }
            list.push(mapping);
        }
        Ok((inputs, outputs))
    }

    /// Refuse mappings on a step kind that does not take them.
    pub(super) fn check_io(
        &self,
        n: Xn<'a>,
        kind: &StepKind,
        inputs: &[Mapping],
        outputs: &[Mapping],
    ) -> Result<(), ImportError> {
        let takes_inputs = matches!(kind, StepKind::Service { .. } | StepKind::Call { .. });
        let takes_outputs = matches!(
            kind,
            StepKind::Service { .. }
                | StepKind::Receive { .. }
                | StepKind::Call { .. }
                | StepKind::UserTask(_)
        );
        if (!inputs.is_empty() && !takes_inputs) || (!outputs.is_empty() && !takes_outputs) {
            return self.fail(
                n,
                format!(
                    "zeebe:ioMapping on a {} step is not run by longrun (inputs on service tasks and call activities; outputs also on receive and user tasks)",
                    kind.type_name()
                ),
            );
        }
        Ok(())
    }
}
