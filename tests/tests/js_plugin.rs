//! JavaScript plugins: the README's recipe run as written (componentize-qjs
//! from npm, in an empty directory with `monitor` on the path), and the plugin
//! it builds in a real host: its metric arrives, and a configuration it refuses
//! is an error it names, never a fault.

use std::process::Command;
use std::time::Duration;

use monitor_tests::{Sandbox, wait_for, walk_through, workspace};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn the_javascript_recipe_works_as_written_and_its_plugin_runs_in_the_host() {
    let npm = Command::new("npm").arg("--version").output();
    assert!(npm.is_ok_and(|o| o.status.success()), "npm is needed (Debian: apt install nodejs npm)");
    let run = walk_through("Plugins in JavaScript", ("js", "app.js"), "js-process-count", Duration::from_secs(600));
    assert!(run.last.contains("js-process-count 0.1.0") && run.last.contains("how many processes run"), "{}", run.last);
    let plugins = &run.plugins;
    // tests/languages measures the README's plugin: the same code.
    let measured = std::fs::read_to_string(workspace().join("tests/languages/javascript/app.js")).unwrap();
    assert_eq!(run.source, measured, "tests/languages/javascript/app.js is the README's app.js");
    let size = std::fs::metadata(plugins.join("js-process-count.wasm")).unwrap().len();
    assert!(size < 4 << 20, "the README says about 1.6 MB: {size} bytes");

    let sandbox = Sandbox::new();
    std::fs::copy(plugins.join("js-process-count.wasm"), sandbox.plugins().join("js-process-count.wasm")).unwrap();
    let _host = sandbox.start(&[]);
    let processes = wait_for("the plugin's metric", LIMIT, || sandbox.metric("js-process-count", "processes"));
    assert!(processes >= 1.0, "{processes}");
    std::fs::write(sandbox.plugins().join("js-process-count.toml"), "verbose = true\n").unwrap();
    let refused = wait_for("the configuration to be refused", LIMIT, || {
        let listing = sandbox.listing();
        let entry = listing["plugins"].as_array()?.iter().find(|p| p["name"] == "js-process-count")?.clone();
        (entry["state"]["state"] == "failed").then_some(entry)
    });
    let error = refused["state"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("takes no configuration, found: verbose = true"), "{refused}");
    assert_eq!(refused["stats"]["faults"], 0, "what a plugin throws is an error, not a fault: {refused}");
}
