//! The stage graph: cycles (with their path), a topological order, and reachability from the
//! pipeline's output.

use std::collections::{BTreeMap, BTreeSet};

use crate::span::Loc;

/// A cycle: stages in order, each reading the next, the last reading the first; with the
/// location where each reads the next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cycle {
    pub stages: Vec<usize>,
    pub edges: Vec<Loc>,
}

/// Every elementary cycle found by a depth-first search, each set of stages reported once.
/// `deps[i]` maps each stage that `i` reads to where it reads it.
pub(crate) fn find_cycles(deps: &[BTreeMap<usize, Loc>]) -> Vec<Cycle> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Gray,
        Black,
    }
    let n = deps.len();
    let mut color = vec![Color::White; n];
    let mut cycles = Vec::new();
    let mut seen_sets: BTreeSet<Vec<usize>> = BTreeSet::new();
    for root in 0..n {
        if color[root] != Color::White {
            continue;
        }
        // Explicit stack: (node, its remaining successors); `path` mirrors the gray nodes.
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(root, deps[root].keys().rev().copied().collect())];
        let mut path = vec![root];
        color[root] = Color::Gray;
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            match next.pop() {
                Some(succ) if succ >= n => {}
                Some(succ) => match color[succ] {
                    Color::White => {
                        color[succ] = Color::Gray;
                        path.push(succ);
                        stack.push((succ, deps[succ].keys().rev().copied().collect()));
                    }
                    Color::Gray => {
                        let start =
                            path.iter().position(|&s| s == succ).expect("invariant: gray nodes are on the path");
                        let stages: Vec<usize> = path[start..].to_vec();
                        let mut key = stages.clone();
                        key.sort_unstable();
                        if seen_sets.insert(key) {
                            let edges = stages
                                .iter()
                                .enumerate()
                                .map(|(i, &s)| deps[s][&stages[(i + 1) % stages.len()]])
                                .collect();
                            cycles.push(Cycle { stages, edges });
                        }
                    }
                    Color::Black => {}
                },
                None => {
                    color[node] = Color::Black;
                    stack.pop();
                    path.pop();
                }
            }
        }
    }
    cycles
}

/// A topological order (every stage after the stages it reads), ties broken by declaration
/// order so the result is deterministic. Requires an acyclic graph.
pub(crate) fn topo_order(deps: &[BTreeMap<usize, Loc>]) -> Vec<usize> {
    let n = deps.len();
    let mut indegree: Vec<usize> = deps.iter().map(|d| d.keys().filter(|&&k| k < n).count()).collect();
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &dep in d.keys().filter(|&&k| k < n) {
            readers[dep].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(next) = ready.pop_first() {
        order.push(next);
        for &r in &readers[next] {
            indegree[r] -= 1;
            if indegree[r] == 0 {
                ready.insert(r);
            }
        }
    }
    order
}

/// Stages that contribute to the output: those it reads, transitively.
pub(crate) fn reachable(deps: &[BTreeMap<usize, Loc>], roots: impl IntoIterator<Item = usize>) -> Vec<bool> {
    let mut seen = vec![false; deps.len()];
    let mut todo: Vec<usize> = roots.into_iter().filter(|&r| r < deps.len()).collect();
    while let Some(s) = todo.pop() {
        if std::mem::replace(&mut seen[s], true) {
            continue;
        }
        todo.extend(deps[s].keys().copied().filter(|&d| d < deps.len() && !seen[d]));
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[&[usize]]) -> Vec<BTreeMap<usize, Loc>> {
        edges.iter().map(|ds| ds.iter().map(|&d| (d, Loc::new(d, 1))).collect()).collect()
    }

    #[test]
    fn detects_cycle_with_path() {
        // 0 reads 1, 1 reads 2, 2 reads 0.
        let cycles = find_cycles(&graph(&[&[1], &[2], &[0]]));
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].stages, vec![0, 1, 2]);
    }

    #[test]
    fn detects_self_reference() {
        let cycles = find_cycles(&graph(&[&[0], &[]]));
        assert_eq!(cycles[0].stages, vec![0]);
    }

    #[test]
    fn acyclic_graph_has_no_cycles_and_orders() {
        let g = graph(&[&[2], &[], &[1]]);
        assert!(find_cycles(&g).is_empty());
        assert_eq!(topo_order(&g), vec![1, 2, 0]);
    }

    #[test]
    fn reachability_follows_reads() {
        let g = graph(&[&[1], &[], &[]]);
        assert_eq!(reachable(&g, [0]), vec![true, true, false]);
    }

    #[test]
    fn deep_chains_do_not_recurse() {
        let n = 100_000;
        let g: Vec<BTreeMap<usize, Loc>> =
            (0..n).map(|i| if i + 1 < n { [(i + 1, Loc::default())].into() } else { BTreeMap::new() }).collect();
        assert!(find_cycles(&g).is_empty());
        assert_eq!(topo_order(&g).len(), n);
    }
}
