//! Writes the macro that generates a role's export glue inside a plugin crate.
//!
//! `wit_bindgen::generate!` resolves `path` against the crate that invokes it, so the
//! SDK hands it the absolute path of the WIT package it was built with.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let wit = [manifest.join("wit"), manifest.join("../wit")]
        .into_iter()
        .find(|p| p.join("types.wit").exists())
        .expect("monitor-sdk: no WIT package beside the crate")
        .canonicalize()
        .unwrap();
    println!("cargo:rerun-if-changed={}", wit.display());
    let wit = wit.to_str().expect("WIT path is not UTF-8");
    let code = format!(
        r#"
/// Generates the export glue for one world in the plugin crate. Internal.
#[doc(hidden)]
#[macro_export]
macro_rules! __generate_role {{
    ($world:tt) => {{
        $crate::wit_bindgen::generate!({{
            world: $world,
            path: {wit:?},
            runtime_path: "::monitor_sdk::wit_bindgen::rt",
            with: {{
                "monitor:plugin/types@0.1.0": ::monitor_sdk::types,
                "monitor:plugin/host@0.1.0": ::monitor_sdk::bindings::monitor::plugin::host,
                "monitor:plugin/kv@0.1.0": ::monitor_sdk::bindings::monitor::plugin::kv,
            }},
        }});
    }};
}}
"#
    );
    fs::write(PathBuf::from(env::var("OUT_DIR").unwrap()).join("generate.rs"), code).unwrap();
}
