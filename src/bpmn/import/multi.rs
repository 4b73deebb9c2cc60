//! Multi-instance loop characteristics: Zeebe's `zeebe:loopCharacteristics` (inputCollection,
//! inputElement, outputCollection, outputElement) and Camunda 7's `camunda:collection` and
//! `camunda:elementVariable`, with a completion condition in FEEL or JUEL.

use super::xml::{child, ext, feel, feel_condition, juel_condition};
use super::{ImportError, Importer, Xn, CAMUNDA7_NS};
use crate::bpmn::ZEEBE_NS;
use crate::definition::MultiInstance;

impl Importer<'_> {
    /// The multi-instance settings of element `n`, if it has them.
    pub(super) fn multi_of(&self, n: Xn) -> Result<Option<MultiInstance>, ImportError> {
        let Some(l) = child(n, "multiInstanceLoopCharacteristics") else {
            return Ok(None);
        };
        if !matches!(
            n.tag_name().name(),
            "serviceTask" | "sendTask" | "userTask" | "callActivity" | "subProcess"
        ) {
            return self.fail(
                l,
                "multi-instance runs on service, send and user tasks, call activities and subprocesses",
            );
        }
        let z = ext(l, ZEEBE_NS, "loopCharacteristics");
        let attr = |zeebe: &str, camunda: &str| {
            z.and_then(|z| z.attribute(zeebe))
                .or(l.attribute((CAMUNDA7_NS, camunda)))
        };
        // `=items`, `items` or `${items}`: a variable path; anything else is an expression.
        let path = |what: &str, v: &str| -> Result<String, ImportError> {
            let t = v.trim();
            let t = t
                .strip_prefix("${")
                .and_then(|r| r.strip_suffix('}'))
                .map(str::to_string)
                .unwrap_or_else(|| feel(t));
            let ok = !t.is_empty()
                && t.split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'));
            if ok {
                Ok(t)
            } else {
                self.fail(
                    l,
                    format!("{what} `{v}` is an expression; longrun reads a variable (=items)"),
                )
            }
        };
        let Some(collection) = attr("inputCollection", "collection") else {
            return self.fail(
                l,
                "a multi-instance needs its collection (zeebe:loopCharacteristics inputCollection, or camunda:collection); a loop cardinality is not run",
            );
        };
        let collection = path("the collection", collection)?;
        let element = attr("inputElement", "elementVariable").map(str::to_string);
        let output_collection = z
            .and_then(|z| z.attribute("outputCollection"))
            .map(str::to_string);
        let output_element = match z.and_then(|z| z.attribute("outputElement")) {
            None => None,
            Some(e) => {
                let p = path("outputElement", e)?;
                if p.contains('.') {
                    return self.fail(
                        l,
                        format!(
                            "outputElement `{e}` names a field of the result (=sku), not a path"
                        ),
                    );
                }
                Some(p)
            }
        };
        let completion = child(l, "completionCondition")
            .and_then(|c| c.text())
            .map(|t| {
                if t.trim().starts_with("${") || t.trim().starts_with("#{") {
                    juel_condition(t)
                } else {
                    feel_condition(&feel(t))
                }
            });
        if child(l, "loopCardinality").is_some() {
            return self.fail(
                l,
                "a loop cardinality is not run: give the multi-instance a collection",
            );
        }
        Ok(Some(MultiInstance {
            collection,
            element,
            sequential: l.attribute("isSequential") == Some("true"),
            output_collection,
            output_element,
            completion,
        }))
    }
}
