//! The `monitor` binary answers for itself. (Also makes `cargo test` build the
//! binary that the black-box tests in `tests/` drive.)

use std::process::Command;

#[test]
fn version_and_help() {
    let bin = env!("CARGO_BIN_EXE_monitor");
    let out = Command::new(bin).arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("monitor {}\n", env!("CARGO_PKG_VERSION")));
    let out = Command::new(bin).args(["plugins", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for command in ["list", "info", "check", "enable", "disable", "revoke"] {
        assert!(help.contains(&format!("  {command} ")), "{help}");
    }
}
