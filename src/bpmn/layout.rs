//! Layout: where each node of an exported diagram goes.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::export::*;

/// A layered layout: each node's column is its longest distance from the start along
/// forward flows (flows that close a loop are left out), rows fill each column top down;
/// boundary events sit on their host's lower edge, and what follows them starts a row below.
pub(super) fn layout(
    nodes: &[Node],
    flows: &[Flow],
    associations: &[(String, String)],
) -> BTreeMap<String, Bounds> {
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.as_str(), i))
        .collect();
    let mut succ: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for f in flows {
        succ[index[f.from.as_str()]].push(index[f.to.as_str()]);
    }
    // A boundary event leads on from its host's column; a compensation task hangs below.
    for (i, n) in nodes.iter().enumerate() {
        if let Some(h) = &n.attached_to {
            succ[index[h.as_str()]].push(i);
        }
    }
    for (from, to) in associations {
        succ[index[from.as_str()]].push(index[to.as_str()]);
    }
    // Back edges by depth-first search from the start (and from anything unreached).
    let mut state = vec![0u8; nodes.len()]; // 0 new, 1 on stack, 2 done
    let mut back = std::collections::HashSet::new();
    let mut order = Vec::new();
    for root in 0..nodes.len() {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some((v, i)) = stack.pop() {
            if i < succ[v].len() {
                stack.push((v, i + 1));
                let w = succ[v][i];
                match state[w] {
                    0 => {
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {
                        back.insert((v, w));
                    }
                    _ => {}
                }
            } else {
                state[v] = 2;
                order.push(v);
            }
        }
    }
    // Longest path over forward edges, in topological order.
    order.reverse();
    let mut column = vec![0usize; nodes.len()];
    for &v in &order {
        for &w in &succ[v] {
            if !back.contains(&(v, w)) {
                let step = usize::from(nodes[w].attached_to.is_none());
                column[w] = column[w].max(column[v] + step);
            }
        }
    }
    // Rows: in discovery order (breadth first from the start) within each column.
    let mut row = vec![usize::MAX; nodes.len()];
    let mut used: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([0usize]);
    let mut seen = vec![false; nodes.len()];
    seen[0] = true;
    let mut visit = Vec::new();
    while let Some(v) = queue.pop_front() {
        visit.push(v);
        for &w in &succ[v] {
            if !seen[w] {
                seen[w] = true;
                queue.push_back(w);
            }
        }
    }
    visit.extend((0..nodes.len()).filter(|i| !seen[*i]));
    let (col_w, row_h) = (160.0, 130.0);
    let mut shapes = BTreeMap::new();
    for &v in &visit {
        if nodes[v].attached_to.is_some() {
            continue;
        }
        let c = column[v];
        let r = used.entry(c).or_insert(0);
        row[v] = *r;
        *r += 1;
        let (w, h) = nodes[v].shape.size();
        // Centred in a 100 x 80 cell.
        let x = 100.0 + c as f64 * col_w + (100.0 - w) / 2.0;
        let y = 80.0 + row[v] as f64 * row_h + (80.0 - h) / 2.0;
        shapes.insert(nodes[v].id.clone(), Bounds { x, y, w, h });
    }
    // Boundary events along the host's lower edge.
    let mut on_host: HashMap<&str, usize> = HashMap::new();
    for n in nodes {
        if let Some(h) = &n.attached_to {
            let host = shapes[h.as_str()];
            let k = on_host.entry(h.as_str()).or_insert(0);
            let b = Bounds {
                x: host.x + 6.0 + *k as f64 * 30.0,
                y: host.y + host.h - 18.0,
                w: 36.0,
                h: 36.0,
            };
            *k += 1;
            shapes.insert(n.id.clone(), b);
        }
    }
    shapes
}
