//! From bytes on disk to a component the host can instantiate: checks that the
//! file is a component, that it speaks this host's contract version, which roles
//! it plays, and that every import is one the host provides.

use wasmtime::component::InstancePre;
use wasmtime::component::types::ComponentItem;

use super::bindings::{CONTRACT_PACKAGE, CONTRACT_VERSION, CONTRACT_VERSIONS, guest};
use super::engine::Runtime;
use super::record::Role;
use super::sandbox::Sandbox;

/// A plugin compiled and linked, ready to instantiate any number of times.
#[derive(Clone)]
pub struct Loaded {
    pub hash: String,
    /// The contract version it was built for: the newest its imports and exports name.
    pub contract: String,
    pub roles: Vec<Role>,
    pub pre: InstancePre<Sandbox>,
    pub from_cache: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{file} is not a WebAssembly file (it does not start with \\0asm); plugins are .wasm components built for wasm32-wasip2"
    )]
    NotWasm { file: String },
    #[error(
        "{file} is a core WebAssembly module, not a component; build the plugin for wasm32-wasip2 (cargo build --target wasm32-wasip2)"
    )]
    CoreModule { file: String },
    #[error("{file} is not a valid component: {detail}")]
    Invalid { file: String, detail: String },
    #[error(
        "{file} was built against {CONTRACT_PACKAGE}@{found}; this host speaks {CONTRACT_PACKAGE}@{} (plugins built for any of them run); rebuild it with a matching monitor-sdk, or upgrade monitor",
        CONTRACT_VERSIONS.join(", @")
    )]
    WrongVersion { file: String, found: String },
    #[error(
        "{file} implements no monitor world (it exports: {exports}); a plugin exports {CONTRACT_PACKAGE}/plugin@{CONTRACT_VERSION} and one of metrics, progress, alert-events, formatter"
    )]
    NoWorld { file: String, exports: String },
    #[error("{file} imports '{import}', which this host does not provide to plugins")]
    UnknownImport { file: String, import: String },
}

pub fn hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_string()
}

pub fn load_bytes(runtime: &Runtime, bytes: &[u8], file: &str) -> Result<Loaded, LoadError> {
    let file = file.to_string();
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => return Err(LoadError::CoreModule { file }),
        Some([0, b'a', b's', b'm', ..]) => {}
        _ => return Err(LoadError::NotWasm { file }),
    }
    let hash = hash(bytes);
    let compiled = runtime
        .compile(bytes, &hash, &file)
        .map_err(|e| LoadError::Invalid { file: file.clone(), detail: format!("{e:#}") })?;
    let component = compiled.component;
    let ty = component.component_type();

    for (name, _) in ty.imports(&runtime.engine) {
        if let Some(found) = foreign_version(name) {
            return Err(LoadError::WrongVersion { file, found });
        }
    }
    let mut exports = Vec::new();
    let mut interfaces = Vec::new();
    for (name, item) in ty.exports(&runtime.engine) {
        if let Some(found) = foreign_version(name) {
            return Err(LoadError::WrongVersion { file, found });
        }
        exports.push(name.to_string());
        if let (Some(interface), ComponentItem::ComponentInstance(_)) = (contract_interface(name), item.ty) {
            interfaces.push(interface.to_string());
        }
    }
    let names = ty.imports(&runtime.engine).map(|(n, _)| n.to_string()).chain(exports.iter().cloned());
    let contract = names
        .filter_map(|n| version_of(&n).map(str::to_string))
        .max_by_key(|v| CONTRACT_VERSIONS.iter().position(|known| known == v))
        .unwrap_or_else(|| CONTRACT_VERSION.to_string());
    let roles: Vec<Role> =
        Role::ALL.into_iter().filter(|r| interfaces.iter().any(|i| r.interfaces().contains(&i.as_str()))).collect();
    if roles.is_empty() || !interfaces.iter().any(|i| i == "plugin") {
        let exports = if exports.is_empty() { "nothing".into() } else { exports.join(", ") };
        return Err(LoadError::NoWorld { file, exports });
    }

    let pre = runtime.linker.instantiate_pre(&component).map_err(|e| {
        let detail = format!("{e:#}");
        match ty.imports(&runtime.engine).map(|(n, _)| n).find(|n| detail.contains(n)) {
            Some(import) => LoadError::UnknownImport { file: file.clone(), import: import.to_string() },
            None => LoadError::Invalid { file: file.clone(), detail },
        }
    })?;
    // Type-check the exports now, so a mismatch is a load error, not a fault later.
    let typecheck = |e: wasmtime::Error| LoadError::Invalid { file: file.clone(), detail: format!("{e:#}") };
    guest::plugin::GuestIndices::new(&pre).map_err(typecheck)?;
    Ok(Loaded { hash, contract, roles, pre, from_cache: compiled.from_cache })
}

/// `monitor:plugin/metrics@0.1.0` → `metrics`, for a version this host speaks.
fn contract_interface(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?;
    let (interface, version) = rest.split_once('@')?;
    CONTRACT_VERSIONS.contains(&version).then_some(interface)
}

/// The version of a `monitor:plugin` name, whether or not this host speaks it.
fn version_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(CONTRACT_PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').map_or("(none)", |(_, v)| v))
}

/// The version of a `monitor:plugin` name that this host does not speak.
fn foreign_version(name: &str) -> Option<String> {
    version_of(name).filter(|v| !CONTRACT_VERSIONS.contains(v)).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_contract_names() {
        assert_eq!(contract_interface("monitor:plugin/metrics@0.1.0"), Some("metrics"));
        assert_eq!(contract_interface("monitor:plugin/metrics@0.1.1"), Some("metrics"));
        assert_eq!(contract_interface("monitor:plugin/metrics@0.2.0"), None);
        assert_eq!(foreign_version("monitor:plugin/host@0.1.2").as_deref(), Some("0.1.2"));
        assert_eq!(foreign_version("monitor:plugin/host@0.1.1"), None);
        assert_eq!(contract_interface("wasi:cli/run@0.2.0"), None);
        assert_eq!(foreign_version("monitor:plugin/plugin@0.2.0").as_deref(), Some("0.2.0"));
        assert_eq!(foreign_version("monitor:plugin/plugin@0.1.0"), None);
        assert_eq!(foreign_version("wasi:io/streams@0.2.0"), None);
    }
}
