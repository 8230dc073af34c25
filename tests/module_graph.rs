//! The module graph has no cycle (`docs/architecture.md`, "Modules").
//!
//! Reads `src/` as text and collects every path a module names outside its
//! tests: `crate::a::...` is an edge to the top-level module `a`, and
//! `super::b` or `crate::<own folder>::b` is an edge to the sibling file `b`.
//! Two graphs must be acyclic: the top-level modules (`handler`, `shape`,
//! ...), and, within each folder, its files other than `mod.rs` (a folder's
//! `mod.rs` declares and re-exports its children, the Rust facade idiom, so
//! its edges to them are not dependencies in the sense that matters here).
//! A reference in a doc comment or a comment counts too: a comment that
//! cites a module is read as a dependency on it, which errs on the strict side.

#![allow(clippy::unwrap_used, reason = "test helpers panic on failure")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file: its folder (`""` for `src/`), its own name, and its text
/// before any `#[cfg(test)]`.
struct SourceFile {
    top: String,
    folder: Vec<String>,
    name: String,
    text: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<SourceFile> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&root, &mut paths);
    let mut files = Vec::new();
    for path in paths {
        let relative = path.strip_prefix(&root).unwrap();
        let parts: Vec<String> =
            relative.iter().map(|part| part.to_string_lossy().into_owned()).collect();
        let file = parts.last().unwrap().trim_end_matches(".rs").to_string();
        // Test files and test folders are not part of the dependency graph.
        if file == "tests" || parts.iter().any(|part| part == "tests") {
            continue;
        }
        if parts.len() == 1 && (file == "lib" || file == "main") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let text = match text.find("#[cfg(test)]") {
            Some(at) => text[..at].to_string(),
            None => text,
        };
        let folder: Vec<String> = parts[..parts.len() - 1].to_vec();
        let top = folder.first().cloned().unwrap_or_else(|| file.clone());
        files.push(SourceFile { top, folder, name: file, text });
    }
    files
}

/// The first path segments named after `prefix` (`crate::`, `super::`),
/// expanding one level of braces: `super::{a, b::c}` names `a` and `b`.
fn named_after(text: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().last();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(inner) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = inner
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(inner.len(), |(i, _)| i);
            let mut level = 0;
            let mut item = String::new();
            for c in inner[..end].chars().chain([',']) {
                match c {
                    '{' => level += 1,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        out.push(segments(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            out.push(segments(rest));
        }
    }
    out.retain(|path| !path.is_empty());
    out
}

/// The identifiers of a path, up to its first non-path character.
fn segments(text: &str) -> Vec<String> {
    let path: String =
        text.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
    path.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Every cycle's members, if the graph has any (Tarjan's strongly connected components).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        let next = state.index.len();
        state.index.insert(node, next);
        state.low.insert(node, next);
        state.stack.push(node);
        state.on_stack.insert(node);
        if let Some(targets) = state.graph.get(node) {
            for target in targets {
                let target = target.as_str();
                if !state.index.contains_key(target) {
                    visit(state, target);
                    let low = state.low[node].min(state.low[target]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(target) {
                    let low = state.low[node].min(state.index[target]);
                    state.low.insert(node, low);
                }
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.push(member.to_string());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

#[test]
fn the_top_level_modules_form_no_cycle() {
    let files = sources();
    let tops: BTreeSet<String> = files.iter().map(|f| f.top.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let edges = graph.entry(file.top.clone()).or_default();
        for path in named_after(&file.text, "crate::") {
            if tops.contains(&path[0]) && path[0] != file.top {
                edges.insert(path[0].clone());
            }
        }
    }
    let found = cycles(&graph);
    assert!(found.is_empty(), "cycles between top-level modules: {found:?}\ngraph: {graph:#?}");
    // The layering the architecture document describes.
    let below = |module: &str| graph.get(module).cloned().unwrap_or_default();
    for low in ["sse", "dialect", "config", "shape"] {
        for high in ["handler", "server", "admin", "live", "proxy", "mock"] {
            assert!(!below(low).contains(high), "{low} must not depend on {high}");
        }
    }
    assert!(!below("handler").contains("admin"), "admin sits above the handler");
    assert!(!below("proxy").contains("handler"), "proxy is only the upstream client");
}

#[test]
fn the_files_of_each_folder_form_no_cycle() {
    let files = sources();
    let mut folders: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| !f.folder.is_empty()) {
        folders.entry(file.folder.clone()).or_default().insert(file.name.clone());
    }
    // Subfolders are siblings too (`mock/anthropic/` beside `mock/reply.rs`).
    for folder in folders.clone().keys() {
        if folder.len() > 1 {
            let parent = folder[..folder.len() - 1].to_vec();
            folders.entry(parent).or_default().insert(folder[folder.len() - 1].clone());
        }
    }
    let mut failures = Vec::new();
    for (folder, names) in &folders {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for file in &files {
            // A file of this folder, or of a subfolder (counted as that subfolder).
            let (node, relative_super) = if &file.folder == folder && file.name != "mod" {
                (file.name.clone(), true)
            } else if file.folder.len() > folder.len() && file.folder[..folder.len()] == folder[..]
            {
                (file.folder[folder.len()].clone(), false)
            } else {
                continue;
            };
            let edges = graph.entry(node.clone()).or_default();
            let mut targets = Vec::new();
            if relative_super {
                for path in named_after(&file.text, "super::") {
                    targets.push(path[0].clone());
                }
            }
            for path in named_after(&file.text, "crate::") {
                if path.len() > folder.len() && path[..folder.len()] == folder[..] {
                    targets.push(path[folder.len()].clone());
                }
            }
            for target in targets {
                if names.contains(&target) && target != node {
                    edges.insert(target);
                }
            }
        }
        let found = cycles(&graph);
        if !found.is_empty() {
            failures.push(format!("src/{}: {found:?}", folder.join("/")));
        }
    }
    assert!(failures.is_empty(), "cycles between files of a folder: {failures:#?}");
}

#[test]
fn the_checker_sees_a_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    graph.entry("d".into()).or_default().insert("a".into());
    assert_eq!(cycles(&graph), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    assert_eq!(
        named_after("use super::{a, b::{C, D}, e};\nlet x = crate::f::g;", "super::"),
        vec![vec!["a".to_string()], vec!["b".into()], vec!["e".into()]]
    );
}
