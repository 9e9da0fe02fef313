//! Posts each alert transition to a webhook: a chat's incoming webhook
//! (Slack, Mattermost, Rocket.Chat: `{"text": …}`) or an ntfy server (its JSON
//! publishing, with title, priority and tags). It needs the `http` capability,
//! granted for the webhook's origin:
//!
//! ```toml
//! # webhook-alerts.toml beside the .wasm
//! url = "https://hooks.slack.com/services/T000/B000/XXXX"
//! style = "slack"            # or "ntfy" (then url = "https://ntfy.sh" and topic = "…")
//! min_level = "warning"      # info, warning, error or critical
//! ```
//!
//! `monitor plugins enable webhook-alerts --grant http:https://hooks.slack.com/services`

use monitor_sdk::config::Deserialize;
use monitor_sdk::{AlertEvent, AlertHandler, AlertState, CapabilityRequest, Level, Plugin};

#[derive(Deserialize, Default, Clone, Copy, PartialEq, Debug)]
#[serde(crate = "monitor_sdk::config::serde", rename_all = "lowercase")]
enum Style {
    #[default]
    Slack,
    Ntfy,
}

#[derive(Deserialize)]
#[serde(crate = "monitor_sdk::config::serde", deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default)]
    style: Style,
    /// ntfy: the topic to publish to.
    #[serde(default)]
    topic: Option<String>,
    #[serde(default = "warning")]
    min_level: String,
}

fn warning() -> String {
    "warning".into()
}

#[derive(Default)]
struct WebhookAlerts {
    config: Option<(Config, u8)>,
}

impl Plugin for WebhookAlerts {
    const SUMMARY: &'static str = "posts each alert to a chat or push webhook (Slack-style or ntfy)";

    fn capabilities() -> Vec<CapabilityRequest> {
        vec![CapabilityRequest::new("http", "posts alerts to the webhook named in webhook-alerts.toml")]
    }

    fn configure(&mut self, text: &str) -> Result<(), String> {
        if text.trim().is_empty() {
            return Err("webhook-alerts.toml is missing or empty; write url = \"https://…\" (and style = \"ntfy\" with topic = \"…\" for ntfy)".into());
        }
        let config: Config = monitor_sdk::config::from_toml(text)?;
        if !config.url.starts_with("https://") && !config.url.starts_with("http://") {
            return Err(format!("url = '{}': write an http:// or https:// URL", config.url));
        }
        if config.style == Style::Ntfy && config.topic.is_none() {
            return Err("style = \"ntfy\" needs topic = \"…\"".into());
        }
        let rank = rank(&config.min_level)
            .ok_or_else(|| format!("min_level = '{}': use info, warning, error or critical", config.min_level))?;
        self.config = Some((config, rank));
        Ok(())
    }
}

impl AlertHandler for WebhookAlerts {
    fn handle(&mut self, event: &AlertEvent) -> Result<(), String> {
        let (config, min) = self.config.as_ref().ok_or("not configured")?;
        if level_rank(event.alert.level) < *min {
            return Ok(());
        }
        let answer = monitor_sdk::http::post_json(&config.url, &payload(config, event))?;
        if answer.status >= 300 {
            let body = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).into_owned();
            return Err(format!("the webhook answered {}: {body}", answer.status));
        }
        Ok(())
    }
}

fn rank(level: &str) -> Option<u8> {
    ["info", "warning", "error", "critical"].iter().position(|l| *l == level).map(|p| p as u8)
}

fn level_rank(level: Level) -> u8 {
    match level {
        Level::Info => 0,
        Level::Warning => 1,
        Level::Error => 2,
        Level::Critical => 3,
    }
}

/// The JSON a webhook of the configured style takes.
fn payload(config: &Config, event: &AlertEvent) -> String {
    let a = &event.alert;
    let level = ["INFO", "WARNING", "ERROR", "CRITICAL"][level_rank(a.level) as usize];
    let state = match a.state {
        AlertState::Pending => "pending",
        AlertState::Firing if event.from == AlertState::Firing => "still firing",
        AlertState::Firing => "firing",
        AlertState::Acknowledged => "acknowledged",
        AlertState::Resolved => "resolved",
        AlertState::Silenced => "silenced",
    };
    let title = format!("[{level}] {} {state}", a.rule);
    match config.style {
        Style::Slack => serde_json::json!({ "text": format!("{title}: {}", a.message) }).to_string(),
        Style::Ntfy => serde_json::json!({
            "topic": config.topic,
            "title": title,
            "message": a.message,
            "priority": level_rank(a.level) + 2,
            "tags": [a.rule, state],
        })
        .to_string(),
    }
}

monitor_sdk::export_alert_handler!(WebhookAlerts);

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_sdk::Alert;

    fn event(state: AlertState, from: AlertState) -> AlertEvent {
        let alert = Alert {
            id: "disk-full".into(),
            rule: "disk-full".into(),
            level: Level::Error,
            state,
            message: "/ is 97% full".into(),
            labels: Vec::new(),
            value: Some(97.0),
            at_ms: 0,
        };
        AlertEvent { alert, seq: 3, from, ack: None }
    }

    fn configured(text: &str) -> WebhookAlerts {
        let mut plugin = WebhookAlerts::default();
        plugin.configure(text).unwrap();
        plugin
    }

    #[test]
    fn slack_and_ntfy_payloads() {
        let slack = configured("url = \"https://hooks.example.com/x\"");
        let (config, _) = slack.config.as_ref().unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&payload(config, &event(AlertState::Firing, AlertState::Pending))).unwrap();
        assert_eq!(json["text"], "[ERROR] disk-full firing: / is 97% full");
        let ntfy = configured("url = \"https://ntfy.sh\"\nstyle = \"ntfy\"\ntopic = \"ops\"");
        let (config, _) = ntfy.config.as_ref().unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&payload(config, &event(AlertState::Firing, AlertState::Firing))).unwrap();
        assert_eq!((json["topic"].as_str(), json["priority"].as_u64()), (Some("ops"), Some(4)));
        assert_eq!(json["title"], "[ERROR] disk-full still firing");
    }

    #[test]
    fn bad_configurations_say_what_to_write() {
        let error = |text: &str| WebhookAlerts::default().configure(text).unwrap_err();
        assert!(error("").contains("write url"));
        assert!(error("url = \"hooks.example.com\"").contains("http:// or https://"));
        assert!(error("url = \"https://ntfy.sh\"\nstyle = \"ntfy\"").contains("needs topic"));
        assert!(error("url = \"https://x\"\nmin_level = \"loud\"").contains("use info, warning"));
    }
}
