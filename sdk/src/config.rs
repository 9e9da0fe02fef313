//! Reading a plugin's configuration (`NAME.toml` beside the `.wasm`).
//!
//! ```
//! use monitor_sdk::config::Deserialize;
//!
//! #[derive(Debug, Deserialize)]
//! #[serde(crate = "monitor_sdk::config::serde", deny_unknown_fields)]
//! struct Config {
//!     directory: String,
//! }
//!
//! let config: Config = monitor_sdk::config::from_toml("directory = \"/srv/prom\"").unwrap();
//! assert_eq!(config.directory, "/srv/prom");
//!
//! let error = monitor_sdk::config::from_toml::<Config>("directory = 3").unwrap_err();
//! assert!(error.contains("directory"), "{error}");
//! ```

pub use serde::{self, Deserialize};

/// Parses `text` as TOML into `T`; the error is one line naming the field and value.
pub fn from_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| {
        let message = e.message().trim().to_string();
        match e.span() {
            Some(span) => {
                let number = text[..span.start].matches('\n').count() + 1;
                let line = text.lines().nth(number - 1).unwrap_or_default().trim();
                format!("line {number} `{line}`: {message}")
            }
            None => message,
        }
    })
}
