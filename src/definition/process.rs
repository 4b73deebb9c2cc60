//! A deployed definition compiled once for running: steps by index, a name-to-index map, the
//! incoming path counts and the set of steps on a cycle computed once, the gateway conditions
//! parsed once. The document ([`ProcessDefinition`]) stays the persisted, checksummed form; a
//! `Process` is never stored. The store keeps one `Arc<Process>` per version.
//!
//! Before, `decide` looked steps up with a linear search, ran a fresh cycle search for every
//! step entered (quadratic in the definition's size) and parsed each condition on every
//! evaluation: a start of a 5,000-step chain took about 112 s of CPU under the instance's row
//! lock. Now its cost follows the steps the instance runs, not the size of the definition.

use std::collections::HashMap;
use std::ops::Deref;

use super::{ProcessDefinition, RetryPolicy, Step, StepKind};
use crate::expr::Expr;

/// A definition compiled for running. Derefs to its [`ProcessDefinition`]; the lookups below
/// replace the document's linear ones.
#[derive(Debug, Clone)]
pub struct Process {
    def: ProcessDefinition,
    index: HashMap<String, usize>,
    incoming: Vec<usize>,
    on_cycle: Vec<bool>,
    /// Per step, per route of an exclusive gateway: the parsed condition, or why it does not
    /// parse (a stored document of an older grammar; the instance fails there with the reason).
    conditions: Vec<Vec<Result<Expr, String>>>,
    /// Per step: for an inclusive fork, the inclusive join its routes lead to.
    inclusive_joins: Vec<Option<String>>,
    /// The event subprocesses, by position.
    event_subprocesses: Vec<usize>,
}

impl Deref for Process {
    type Target = ProcessDefinition;
    fn deref(&self) -> &ProcessDefinition {
        &self.def
    }
}

/// Compile a document for running. Lenient: it accepts whatever a stored version holds
/// (validation at deploy is where bad documents are refused), so no deployed version stops
/// loading when the grammar gets stricter.
pub fn compile(def: ProcessDefinition) -> Process {
    let n = def.steps.len();
    let mut index = HashMap::with_capacity(n);
    for (i, s) in def.steps.iter().enumerate() {
        index.entry(s.id.clone()).or_insert(i);
    }
    let targets: Vec<Vec<usize>> = def
        .steps
        .iter()
        .map(|s| {
            s.targets()
                .into_iter()
                .filter_map(|t| index.get(t).copied())
                .collect()
        })
        .collect();
    let mut incoming = vec![0usize; n];
    for s in &def.steps {
        for t in s.targets() {
            if let Some(&i) = index.get(t) {
                incoming[i] += 1;
            }
        }
    }
    let on_cycle = cyclic(&targets);
    let conditions = def
        .steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::Exclusive { routes, .. } | StepKind::Inclusive { routes, .. } => routes
                .iter()
                .map(|r| Expr::parse(&r.when).map_err(|e| e.to_string()))
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    let inclusive_joins = def
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| match s.kind {
            StepKind::Inclusive { .. } => nearest_inclusive_join(&def, &targets, i),
            _ => None,
        })
        .collect();
    let event_subprocesses = def
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.kind, StepKind::EventSubprocess { .. }))
        .map(|(i, _)| i)
        .collect();
    Process {
        def,
        index,
        incoming,
        on_cycle,
        conditions,
        inclusive_joins,
        event_subprocesses,
    }
}

/// The inclusive join the inclusive fork at index `fork` of a definition leads to (for
/// validation, before the definition is compiled).
pub(crate) fn inclusive_join_of(def: &ProcessDefinition, fork: usize) -> Option<String> {
    let index: HashMap<&str, usize> = def
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let targets: Vec<Vec<usize>> = def
        .steps
        .iter()
        .map(|s| {
            s.targets()
                .into_iter()
                .filter_map(|t| index.get(t).copied())
                .collect()
        })
        .collect();
    nearest_inclusive_join(def, &targets, fork)
}

/// The inclusive join an inclusive fork's routes lead to: the nearest one (fewest steps)
/// reachable from its first route, if every route reaches it.
pub(crate) fn nearest_inclusive_join(
    def: &ProcessDefinition,
    targets: &[Vec<usize>],
    fork: usize,
) -> Option<String> {
    let reach = |from: usize| -> Vec<usize> {
        // Breadth first: the join steps in order of distance, not passing through a join.
        let mut seen = vec![false; targets.len()];
        let mut queue = std::collections::VecDeque::from([from]);
        let mut joins = Vec::new();
        while let Some(i) = queue.pop_front() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            if matches!(def.steps[i].kind, StepKind::InclusiveJoin) {
                joins.push(i);
                continue;
            }
            queue.extend(targets[i].iter().copied());
        }
        joins
    };
    let routes = &targets[fork];
    let first = *routes.first()?;
    let candidates = reach(first);
    let join = candidates
        .into_iter()
        .find(|j| routes[1..].iter().all(|r| reach(*r).contains(j)))?;
    Some(def.steps[join].id.clone())
}

/// Which nodes lie on a cycle: those in a strongly connected component of more than one node,
/// or with an edge to themselves (Tarjan's algorithm, iterative: a 5,000-step chain must not
/// overflow the stack).
fn cyclic(targets: &[Vec<usize>]) -> Vec<bool> {
    let n = targets.len();
    let mut on = vec![false; n];
    let mut order = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut next = 0usize;
    for root in 0..n {
        if order[root] != usize::MAX {
            continue;
        }
        // (node, index of the next edge to look at)
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        order[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if let Some(&w) = targets[v].get(*edge) {
                *edge += 1;
                if order[w] == usize::MAX {
                    order[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == order[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                let looped = component.len() > 1 || targets[v].contains(&v);
                for w in component {
                    on[w] = looped;
                }
            }
        }
    }
    on
}

impl Process {
    /// The document it was compiled from.
    pub fn definition(&self) -> &ProcessDefinition {
        &self.def
    }

    /// A step by id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.idx(id).map(|i| &self.def.steps[i])
    }

    /// The position of a step by runtime id: a multi-instance element (`step#index`), or a
    /// step running for one, is its step.
    fn idx(&self, id: &str) -> Option<usize> {
        let id = id.split_once('#').map_or(id, |(s, _)| s);
        self.index.get(id).copied()
    }

    /// The position of a step in the document.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// How many paths lead into step `id` (a join waits for one arrival per path).
    pub fn incoming(&self, id: &str) -> usize {
        self.idx(id).map_or(0, |i| self.incoming[i])
    }

    /// Whether `id` lies on a cycle (a loop leads back to it), so entering it again is a new
    /// pass.
    pub fn on_cycle(&self, id: &str) -> bool {
        self.idx(id).is_some_and(|i| self.on_cycle[i])
    }

    /// The inclusive join the inclusive fork `step` leads to (validation makes sure there is
    /// one).
    pub fn inclusive_join(&self, step: &str) -> Option<&str> {
        self.idx(step)
            .and_then(|i| self.inclusive_joins[i].as_deref())
    }

    /// The parsed condition of route `route` of the exclusive gateway `step`.
    pub fn condition(&self, step: &str, route: usize) -> Option<&Result<Expr, String>> {
        self.idx(step).and_then(|i| self.conditions[i].get(route))
    }

    /// The retry policy of a service step: its own, else the process's.
    pub fn retry_policy(&self, step: &str) -> Option<&RetryPolicy> {
        match self.step(step).map(|s| &s.kind) {
            Some(StepKind::Service { retry: Some(r), .. }) => Some(r),
            _ => self.def.retry.as_ref(),
        }
    }

    /// The event subprocesses of `scope` (the process's own with `None`).
    pub fn event_subprocesses_of<'a>(
        &'a self,
        scope: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Step> + 'a {
        self.event_subprocesses
            .iter()
            .map(|&i| &self.def.steps[i])
            .filter(move |s| s.within.as_deref() == scope)
    }

    /// Whether step `step` lies inside subprocess `scope`, however deep (not the subprocess
    /// step itself). Runtime ids count: a multi-instance step's elements (`step#k`) are inside
    /// it, and inside element `S#k` of a multi-instance subprocess are the steps of `S` that
    /// run for that element (`x#k`).
    pub fn inside(&self, step: &str, scope: &str) -> bool {
        fn split(id: &str) -> (&str, Option<&str>) {
            match id.split_once('#') {
                Some((b, k)) => (b, Some(k)),
                None => (id, None),
            }
        }
        let ((sb, sk), (cb, ck)) = (split(step), split(scope));
        if sb == cb {
            return sk.is_some() && ck.is_none();
        }
        let mut at = self.step(sb).and_then(|s| s.within.as_deref());
        let mut found = false;
        for _ in 0..=super::MAX_NESTING {
            match at {
                None => break,
                Some(s) if s == cb => {
                    found = true;
                    break;
                }
                Some(s) => at = self.step(s).and_then(|x| x.within.as_deref()),
            }
        }
        found && (ck.is_none() || ck == sk)
    }

    /// The multi-instance step whose element runtime id `id` belongs to, and the element's
    /// index: `fetch#2` is element 2 of `fetch`; `x#2`, a step inside the multi-instance
    /// subprocess `S`, runs for element 2 of `S`. `None` for a plain id.
    pub fn element_scope(&self, id: &str) -> Option<(&str, usize)> {
        let (base, k) = super::split_element(id)?;
        let mut at = Some(base);
        for _ in 0..=super::MAX_NESTING {
            let s = self.step(at?)?;
            if s.multi.is_some() {
                return Some((s.id.as_str(), k));
            }
            at = s.within.as_deref();
        }
        None
    }

    /// The scope runtime id `id` runs in: its step's subprocess, as the element it runs
    /// for (`S#2` for `x#2` inside the multi-instance subprocess `S`).
    pub fn scope_of(&self, id: &str) -> Option<String> {
        let (base, k) = match super::split_element(id) {
            Some((b, k)) => (b, Some(k)),
            None => (id, None),
        };
        let step = self.step(base)?;
        let within = step.within.clone()?;
        match k {
            Some(k) if step.multi.is_none() => Some(super::element_id(&within, k)),
            _ => Some(within),
        }
    }
}

impl From<ProcessDefinition> for Process {
    fn from(def: ProcessDefinition) -> Process {
        compile(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_with_loop() -> ProcessDefinition {
        ProcessDefinition::builder("p")
            .send("a", "A")
            .exclusive("again")
            .when("n < 3", "b")
            .otherwise("done")
            .send("b", "B")
            .next("again")
            .end("done")
            .build()
            .unwrap()
    }

    #[test]
    fn lookups_match_the_documents_own() {
        let def = chain_with_loop();
        let p = compile(def.clone());
        for s in &def.steps {
            assert_eq!(p.step(&s.id).map(|x| &x.id), def.step(&s.id).map(|x| &x.id));
            assert_eq!(p.incoming(&s.id), def.incoming(&s.id), "{}", s.id);
            assert_eq!(p.on_cycle(&s.id), def.on_cycle(&s.id), "{}", s.id);
        }
        assert!(p.on_cycle("again") && p.on_cycle("b") && !p.on_cycle("a"));
        assert!(p.condition("again", 0).unwrap().is_ok());
        assert!(p.step("nope").is_none());
    }

    #[test]
    fn a_long_chain_compiles_without_deep_recursion() {
        let mut b = ProcessDefinition::builder("long").send("s0", "M");
        for i in 1..4_999 {
            b = b.send(format!("s{i}"), "M");
        }
        let def = b.end("done").build().unwrap();
        let p = compile(def);
        assert!(!p.on_cycle("s0") && p.incoming("s4998") == 1);
    }
}
