//! `monitor plugins new`: each role's project builds, passes its own tests and
//! `plugins check` on its own, with the SDK it carries and nothing of this
//! repository; and the metric provider runs in a real host.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use monitor_tests::{Sandbox, monitor_bin, wait_for, workspace};

fn ok(what: &str, out: Output) -> String {
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed:\n{said}");
    said
}

/// `cargo ARGS` in `dir`, outside this workspace, its artifacts in `target`.
fn cargo(dir: &Path, target: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap()
}

#[test]
fn each_roles_project_builds_tests_and_loads_with_the_sdk_it_carries() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    let sandbox = Sandbox::new();
    for role in ["metric-provider", "progress-calculator", "alert-handler", "display-formatter"] {
        let name = format!("my-{role}");
        let dir = tmp.path().join(&name);
        let out = Command::new(monitor_bin())
            .args(["plugins", "new", &name, "--role", role, "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        let said = ok("plugins new", out);
        assert!(said.contains("next: cd ") && said.contains("cargo build --release --target wasm32-wasip2"), "{said}");
        // Nothing in the project points back into this repository.
        let checkout = workspace().canonicalize().unwrap();
        for file in ["Cargo.toml", "monitor-sdk/Cargo.toml", "monitor-sdk/build.rs"] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            assert!(!text.contains(checkout.to_str().unwrap()), "{file}: {text}");
        }
        ok(&format!("cargo test of {name}"), cargo(&dir, &target, &["test", "--offline"]));
        ok(
            &format!("the wasm build of {name}"),
            cargo(&dir, &target, &["build", "--offline", "--release", "--target", "wasm32-wasip2"]),
        );
        let wasm = target.join(format!("wasm32-wasip2/release/{}.wasm", name.replace('-', "_")));
        let checked =
            ok("plugins check", Command::new(monitor_bin()).args(["plugins", "check"]).arg(&wasm).output().unwrap());
        assert!(checked.contains("valid plugin") && checked.contains(&format!("{name} 0.1.0")), "{checked}");
        std::fs::copy(&wasm, sandbox.plugins().join(format!("{name}.wasm"))).unwrap();
    }

    // In a real host: the metric provider's series, every tick.
    let _host = sandbox.start(&[]);
    let used = wait_for("the new plugin's metric", Duration::from_secs(30), || {
        sandbox.metric("my-metric-provider", "memory_used_ratio")
    });
    assert!(used > 0.0 && used < 1.0, "{used}");

    // A name or a place that will not do: one line each, nothing written.
    let out = Command::new(monitor_bin())
        .args(["plugins", "new", "My Plugin", "--role", "metric-provider"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plugin name 'My Plugin'"));
    let taken = tmp.path().join("my-metric-provider");
    let out = Command::new(monitor_bin())
        .args(["plugins", "new", "again", "--role", "alert-handler", "--dir"])
        .arg(&taken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
}
