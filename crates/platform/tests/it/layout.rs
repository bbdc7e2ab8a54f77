//! The platform's files import one another without a circle: following `crate::<file>` paths
//! (outside comments) from any file never leads back to it. A circle means two files share one
//! job, or one holds a piece of another's (as `CallerName` in the callers' check, which the access
//! log reads, did).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: BTreeSet<String> = std::fs::read_dir(&src)
        .expect("platform's src")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(src.join(format!("{file}.rs"))).expect("a source file");
        let mut uses = BTreeSet::new();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if name != *file && files.contains(&name) {
                    uses.insert(name);
                }
            }
        }
        graph.insert(file.clone(), uses);
    }
    graph
}

/// A path of imports from `from` back to `from`, if there is one.
fn circle_through(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("a path is never empty");
        for next in &graph[last] {
            if next == from {
                let mut circle = path.clone();
                circle.push(next.clone());
                return Some(circle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_file_of_the_platform_imports_itself_through_others() {
    let graph = imports();
    assert!(graph.len() > 20, "the source files were found: {graph:?}");
    assert!(
        graph["pipeline"].contains("access_log"),
        "imports are read: {graph:?}"
    );
    let circles: Vec<String> = graph
        .keys()
        .filter_map(|file| circle_through(&graph, file))
        .map(|circle| circle.join(" -> "))
        .collect();
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}
