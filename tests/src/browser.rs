//! Debian's chromium, headless, driven through chromedriver (WebDriver) by
//! fantoccini: the dashboard as a person sees it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::wait_for;

const LIMIT: Duration = Duration::from_secs(30);

/// Debian's chromium, headless, driven through chromedriver.
pub struct Browser {
    pub runtime: tokio::runtime::Runtime,
    client: Option<fantoccini::Client>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver, which .ci/run installs)");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,800",
        ]
        .into_iter()
        .map(String::from)
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let mut capabilities = serde_json::Map::new();
        capabilities
            .insert("goog:chromeOptions".into(), serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }));
        let client = wait_for("chromedriver to start a browser", LIMIT, || {
            let mut builder = fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
            builder.capabilities(capabilities.clone());
            runtime.block_on(builder.connect(&format!("http://127.0.0.1:{port}"))).ok()
        });
        Browser { runtime, client: Some(client), driver, _profile: profile }
    }

    pub fn client(&self) -> &fantoccini::Client {
        self.client.as_ref().expect("open")
    }

    pub fn goto(&self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).unwrap();
    }

    pub fn eval(&self, script: &str) -> serde_json::Value {
        self.runtime.block_on(self.client().execute(script, Vec::new())).unwrap_or(serde_json::Value::Null)
    }

    /// Waits until `script` (an expression) is truthy in the page; its value.
    pub fn wait(&self, what: &str, script: &str) -> serde_json::Value {
        let script = format!("return {script};");
        wait_for(what, LIMIT, || {
            let value = self.eval(&script);
            let truthy = !matches!(&value, serde_json::Value::Null | serde_json::Value::Bool(false))
                && value != serde_json::json!(0)
                && value != serde_json::json!("");
            truthy.then_some(value)
        })
    }

    pub fn screenshot(&self, path: &std::path::Path) {
        let png = self.runtime.block_on(self.client().screenshot()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
