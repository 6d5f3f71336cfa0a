//! The import graph among all of dialin's top-level modules has no cycle (issue 21). The
//! direction: `serve` (status, reload, the HTTP routes) sits on top and may import anything;
//! `config` turns the file into each domain module's own settings types (`config/domain.rs`),
//! so it may import the domain modules and none of them imports `config`; `call` imports
//! `media`, `sip`, `routing` and `ops`; `sip` imports `media` (codecs in SDP); `ops` (metrics,
//! the call registry, drain) imports no call-layer module, the call flow's metric labels are
//! the flow's own (`FlowState::label`); shared ids live in `ids` and the store's failure
//! counter in `store_errors`, leaves.
//!
//! Read from the sources: every `crate::<module>` path outside comments, in `use` lines and
//! inline. Test code (`*tests.rs` files and inline `#[cfg(test)] mod … { … }` blocks, which
//! end their files here) is left out: a test may build its fixtures from a TOML text.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The modules whose graph must stay acyclic: every top-level module of the library
/// ([`every_module_is_watched`] keeps the list whole).
const WATCHED: [&str; 19] = [
    "admin",
    "bbb_api",
    "call",
    "config",
    "digit",
    "esl",
    "ids",
    "logging",
    "media",
    "ops",
    "pins_cmd",
    "privacy",
    "routing",
    "secret",
    "serve",
    "sip",
    "sounds",
    "store",
    "store_errors",
];

/// An edge `from → to` with one place that makes it (`file:line`), for the failure message.
type Graph = BTreeMap<&'static str, BTreeMap<&'static str, String>>;

/// The lines of `text` that are not test code: everything before an inline test module.
fn production_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() != "#[cfg(test)]" {
            continue;
        }
        let item = lines[i + 1..]
            .iter()
            .find(|l| !l.trim_start().starts_with("#["));
        if item.is_some_and(|l| l.trim_start().starts_with("mod ") && l.trim_end().ends_with('{')) {
            end = i;
            break;
        }
    }
    lines
        .into_iter()
        .take(end)
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// Adds the edges that `text` (a file of module `from`, named `file`) makes.
fn add_edges(graph: &mut Graph, from: &'static str, file: &str, text: &str) {
    for (n, line) in production_lines(text) {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if let Some(to) = WATCHED.iter().find(|m| **m == name && **m != from) {
                graph
                    .entry(from)
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| format!("{file}:{n}"));
            }
        }
    }
}

/// Reads every non-test `.rs` file under `dir` into `graph` as module `module`'s edges.
fn read_dir(graph: &mut Graph, module: &'static str, dir: &Path) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("the source tree is readable")
        .map(|e| e.expect("a readable directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            read_dir(graph, module, &path);
        } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            add_edges(graph, module, &path.display().to_string(), &text);
        }
    }
}

/// The graph of the watched modules as the sources in `src` have it.
fn source_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for module in WATCHED {
        let file = src.join(format!("{module}.rs"));
        if file.is_file() {
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            add_edges(&mut graph, module, &file.display().to_string(), &text);
        }
        let dir = src.join(module);
        if dir.is_dir() {
            read_dir(&mut graph, module, &dir);
        }
    }
    graph
}

/// A cycle in `graph` as the list of its edges with their evidence, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        node: &'static str,
        path: &mut Vec<&'static str>,
        done: &mut BTreeSet<&'static str>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| *n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node);
            return Some(
                cycle
                    .windows(2)
                    .map(|w| format!("{} -> {} ({})", w[0], w[1], graph[w[0]][w[1]]))
                    .collect(),
            );
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            if let Some(c) = visit(graph, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    WATCHED
        .iter()
        .find_map(|n| visit(graph, n, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_import_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = source_graph(&src);
    assert!(
        graph
            .get("config")
            .is_some_and(|e| e.contains_key("routing")),
        "the reader sees config's imports: {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle among the modules (issue 21):\n{}",
            cycle.join("\n")
        );
    }
}

#[test]
fn every_module_is_watched() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found: Vec<String> = std::fs::read_dir(&src)
        .expect("the source tree is readable")
        .map(|e| e.expect("a readable directory entry").path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let module = name
                .strip_suffix(".rs")
                .map_or(name.clone(), str::to_string);
            (p.is_dir() || name.ends_with(".rs")).then_some(module)
        })
        .filter(|m| !["lib", "main", "module_graph_tests"].contains(&m.as_str()))
        .collect();
    found.sort();
    found.dedup();
    assert_eq!(found, WATCHED, "a new top-level module joins WATCHED");
}

#[test]
fn a_back_edge_is_found() {
    let mut graph = Graph::new();
    add_edges(
        &mut graph,
        "config",
        "config/domain.rs",
        "use crate::routing::RoutingSettings;\n",
    );
    add_edges(
        &mut graph,
        "routing",
        "routing/mod.rs",
        "// crate::config in a comment\nuse crate::ids::ConferenceId;\n",
    );
    assert_eq!(find_cycle(&graph), None);
    let test_only = "fn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::config::Config;\n}\n";
    add_edges(&mut graph, "routing", "routing/mod.rs", test_only);
    assert_eq!(find_cycle(&graph), None);
    add_edges(
        &mut graph,
        "routing",
        "routing/mod.rs",
        "pub fn new(c: &crate::config::Config) {}\n",
    );
    let cycle = find_cycle(&graph).expect("routing -> config closes a cycle");
    assert_eq!(
        cycle,
        [
            "config -> routing (config/domain.rs:1)",
            "routing -> config (routing/mod.rs:1)"
        ]
    );
}
