//! The README's "Write your first plugin", run as written: in an empty
//! directory outside the workspace, each shell block and the source as given,
//! with only `/path/to/monitor` and `~/plugins` pointed at this checkout and a
//! temporary directory. A snippet that breaks when pasted breaks this test.

use std::process::Command;

use monitor_tests::{monitor_bin, readme_blocks, workspace};

#[test]
fn the_first_plugin_walk_through_works_as_written() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let blocks = readme_blocks(&readme, "Write your first plugin");
    let languages: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(languages, ["sh", "sh", "rust", "sh"], "the walk-through's steps");
    let home = tempfile::tempdir().unwrap();
    let plugins = home.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let bin = monitor_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let sdk = workspace().join("sdk");
    let mut crate_dir = home.path().to_path_buf();
    for (i, (language, text)) in blocks.iter().enumerate() {
        if language == "rust" {
            std::fs::write(crate_dir.join("src/lib.rs"), text).unwrap();
            continue;
        }
        let script =
            text.replace("/path/to/monitor/sdk", sdk.to_str().unwrap()).replace("~/plugins", plugins.to_str().unwrap());
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(&crate_dir)
            .env("PATH", &path)
            .env("HOME", home.path())
            .env(
                "CARGO_HOME",
                std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap())),
            )
            .env(
                "RUSTUP_HOME",
                std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{}/.rustup", std::env::var("HOME").unwrap())),
            )
            .env_remove("CARGO_TARGET_DIR")
            .env("MONITOR_DATA_DIR", home.path().join("data"))
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "step {} failed:\n{script}\n{said}", i + 1);
        if i == 0 {
            crate_dir = crate_dir.join("process-count");
        }
        if i == blocks.len() - 1 {
            assert!(said.contains("process-count 0.1.0") && said.contains("how many processes run"), "{said}");
        }
    }
    let size = std::fs::metadata(plugins.join("process-count.wasm")).unwrap().len();
    assert!(size < 100_000, "the release profile keeps it small: {size} bytes");
}
