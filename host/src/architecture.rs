//! Keeps the layers of ARCHITECTURE.md's table true: reads every module's code (its
//! tests left out) and fails, naming the file and the path, where a module
//! uses one of a higher layer.

use std::path::Path;

/// The layers, lowest first, and the modules in each (a path names a module
/// and everything below it; the longest match decides). A module may use its
/// own layer and those below.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", &["text", "paths", "sched", "lock", "error", "tls"]),
    (
        "domain",
        &[
            "access",
            "progress",
            "metrics",
            "sampler",
            "alerts",
            "exposition",
            "status",
            "plugin::capability",
            "plugin::fault",
            "plugin::record",
            "plugin::stats",
        ],
    ),
    ("storage", &["store"]),
    (
        "runtime",
        &[
            "plugin",
            "writer",
            "history",
            "alerts::service",
            "alerts::dispatch",
            "watch",
            "stream",
            "config",
            "query",
            "fleet",
        ],
    ),
    ("host", &["daemon", "api"]),
    ("client", &["client"]),
    ("interface", &["cli", "top"]),
];

/// The index of the storage layer: it and those below know nothing of clap.
const STORAGE: usize = 2;

/// The layer of a module path such as `alerts::service::Alerting`.
fn layer(path: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (index, (_, modules)) in LAYERS.iter().enumerate() {
        for module in *modules {
            let matches = path == *module || path.starts_with(&format!("{module}::"));
            if matches && best.is_none_or(|(len, _)| module.len() > len) {
                best = Some((module.len(), index));
            }
        }
    }
    best.map(|(_, index)| index)
}

/// The file's code without its tests: a `#[cfg(test)]` module declared
/// inline ends the file (tests come last), one in a file of its own is
/// skipped, as is any other item marked so.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]" {
            match lines.next() {
                Some(next) if next.trim_start().starts_with("mod ") && next.trim_end().ends_with('{') => break,
                _ => continue,
            }
        }
        let line = line.split("//").next().unwrap_or_default();
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Every `crate::a::b` path in the code of `module`, and every `super::b`
/// as the path it names.
fn uses(module: &str, code: &str) -> Vec<String> {
    let parent = module.rsplit_once("::").map_or("", |(parent, _)| parent);
    let mut found = Vec::new();
    for (prefix, base) in [("crate::", String::new()), ("super::", format!("{parent}::"))] {
        for (at, _) in code.match_indices(prefix) {
            if prefix == "super::" && code[..at].ends_with("::") {
                continue; // `crate::x::super::` and the like: not a module's own `super`
            }
            let rest = &code[at + prefix.len()..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            let path = format!("{base}{}", rest[..end].trim_end_matches(':'));
            found.push(path.trim_start_matches("::").to_string());
        }
    }
    found
}

fn visit(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "tests" {
                visit(&path, root, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" {
            let relative = path.strip_prefix(root).unwrap().with_extension("");
            let module = relative.to_string_lossy().replace('/', "::");
            out.push((module, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

#[test]
fn modules_use_only_their_own_layer_and_those_below() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&root, &root, &mut files);
    let mut wrong = Vec::new();
    for (module, text) in &files {
        let Some(own) = layer(module) else {
            continue; // lib, main, and test-only modules
        };
        let code = code(text);
        if own <= STORAGE && code.contains("clap::") {
            wrong.push(format!(
                "host/src/{}.rs uses clap: the {} layer knows nothing of the command line; give the type its clap face in cli/",
                module.replace("::", "/"),
                LAYERS[own].0
            ));
        }
        for used in uses(module, &code) {
            let private = used.starts_with("plugin::bindings") && !module.starts_with("plugin");
            if private {
                wrong.push(format!(
                    "host/src/{}.rs uses crate::{used}: the generated bindings are the plugin runtime's own; convert in plugin/bindings.rs",
                    module.replace("::", "/")
                ));
            }
            if let Some(theirs) = layer(&used).filter(|theirs| *theirs > own) {
                wrong.push(format!(
                    "host/src/{}.rs uses crate::{used}: {} may use {} and the layers below it, not {}",
                    module.replace("::", "/"),
                    module,
                    LAYERS[own].0,
                    LAYERS[theirs].0
                ));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(wrong.is_empty(), "imports against the layers (the table is in ARCHITECTURE.md):\n{}", wrong.join("\n"));
}

#[test]
fn every_module_has_a_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&root, &root, &mut files);
    let exempt = ["lib", "main", "architecture", "boundaries"];
    let homeless: Vec<&String> =
        files.iter().map(|(m, _)| m).filter(|m| !exempt.contains(&m.as_str()) && layer(m).is_none()).collect();
    assert!(homeless.is_empty(), "modules in no layer; add them to LAYERS: {homeless:?}");
}
