//! A definition as a document: parsed, printed and checksummed, and its steps looked up
//! (the compiled [`super::Process`] has faster lookups for running).

use super::*;

impl ProcessDefinition {
    /// Start a fluent builder for process `id`.
    pub fn builder(id: impl Into<String>) -> ProcessBuilder {
        ProcessBuilder::new(id)
    }

    /// The retention period this definition declares, parsed: `Ok(None)` when it declares
    /// none (the engine's default applies), an error for a period that is not a positive ISO
    /// 8601 duration of at most 100 years.
    pub fn retention_period(&self) -> Result<Option<chrono::Duration>, String> {
        let Some(text) = &self.retention else {
            return Ok(None);
        };
        let d = parse_duration(text)?;
        if d <= chrono::Duration::zero() {
            return Err("a retention period must be positive".into());
        }
        if d > MAX_SPAN {
            return Err("a retention period must be at most 100 years".into());
        }
        Ok(Some(d))
    }

    /// Parse a JSON document and validate it.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(Error::Parse {
                line: 1,
                column: 1,
                message: format!(
                    "the document is {} bytes; at most {MAX_DOCUMENT_BYTES} are accepted",
                    text.len()
                ),
            });
        }
        let def: ProcessDefinition = serde_json::from_str(text).map_err(|e| Error::Parse {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        def.validate()?;
        Ok(def)
    }

    /// The JSON document of this definition (pretty, stable field order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a definition always serializes")
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The retry policy of a service step: its own, else the process's.
    pub fn retry_policy(&self, step: &str) -> Option<&RetryPolicy> {
        match self.step(step).map(|s| &s.kind) {
            Some(StepKind::Service { retry: Some(r), .. }) => Some(r),
            _ => self.retry.as_ref(),
        }
    }

    /// The step an instance begins at.
    pub fn first_step(&self) -> &Step {
        &self.steps[0]
    }

    /// The step an instance started by `message` begins at (the first step, unless its start
    /// names another).
    pub fn first_step_for(&self, message: Option<&str>) -> &str {
        message
            .and_then(|m| {
                self.start
                    .iter()
                    .chain(&self.starts)
                    .find(|s| s.message == m)
            })
            .and_then(|s| s.at.as_deref())
            .unwrap_or(&self.steps[0].id)
    }

    /// How many paths lead into step `id` (a join waits for one arrival per path).
    pub fn incoming(&self, id: &str) -> usize {
        self.steps
            .iter()
            .flat_map(|s| s.targets())
            .filter(|t| *t == id)
            .count()
    }

    /// Whether `id` lies on a cycle (a loop leads back to it), so entering it again is a new pass.
    pub fn on_cycle(&self, id: &str) -> bool {
        let index = |t: &str| self.steps.iter().position(|s| s.id == t);
        let Some(start) = index(id) else {
            return false;
        };
        let mut seen = vec![false; self.steps.len()];
        let mut todo: Vec<usize> = self.steps[start]
            .targets()
            .into_iter()
            .filter_map(index)
            .collect();
        while let Some(i) = todo.pop() {
            if i == start {
                return true;
            }
            if !std::mem::replace(&mut seen[i], true) {
                todo.extend(self.steps[i].targets().into_iter().filter_map(index));
            }
        }
        false
    }

    /// A stable checksum of the canonical JSON form: the same document deploys as the same
    /// version.
    pub fn checksum(&self) -> String {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::to_vec(self).expect("a definition always serializes");
        let digest = Sha256::digest(&canonical);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}
