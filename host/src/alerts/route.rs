//! Routing: which handlers receive an alert transition.
//!
//! ```toml
//! [[alerts.handler]]
//! name = "pager"
//! kind = "command"                      # runs a program, the alert as JSON on stdin; no shell
//! command = ["/usr/local/bin/page", "--team", "ops"]
//! timeout = "10s"
//!
//! [[alerts.handler]]
//! name = "chat"
//! kind = "webhook"                      # HTTP POST of the alert as JSON
//! url = "https://chat.internal/hooks/monitor"  # certificates verified; redirects not followed
//! ca_file = "/etc/ssl/internal-ca.pem"  # optional: trust these CAs instead of the built-in roots
//! retries = 5
//! backoff = "2s"                        # doubles after each failed try
//!
//! [[alerts.handler]]
//! name = "fleet"
//! kind = "alertmanager"                 # Prometheus' Alertmanager, as Prometheus sends to it
//! url = "http://alertmanager:9093"      # or urls = [...]: every one gets every post
//! resend = "1m"                         # alerts still firing are sent again this often
//!
//! [[alerts.route]]
//! level = "critical"                    # this level and above
//! match = { team = "ops" }              # `rule`, and labels, by exact value
//! handlers = ["pager", "plugin:jsonl-alerts"]
//! continue = true                       # also try the routes below
//!
//! [[alerts.route]]
//! handlers = ["log", "chat"]            # level defaults to warning
//! ```
//!
//! Routes are tried in order; the first that matches takes the alert, unless
//! it says `continue`. Handler names: one defined in `[[alerts.handler]]`,
//! `log` (the host's log), `plugin:NAME` (an alert-handler plugin) or `plugins`
//! (every running alert-handler plugin).
//!
//! Without routes the host routes as if given
//! `[{ level = "info", handlers = ["log"], continue = true }, { level = "warning", handlers = ["plugins", <every handler defined>] }]`:
//! every alert goes to the log, and from warning up to every handler. Silenced
//! transitions are stored but not routed.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::alertmanager::Alertmanager;
use super::lifecycle::Transition;
use super::rule::{Labels, Level};

/// Tries per delivery unless a handler says otherwise: the first and 3 retries.
pub const DEFAULT_RETRIES: u32 = 3;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// One `[[alerts.route]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// The lowest level the route takes; default `warning`.
    pub level: Option<String>,
    /// `rule`, and labels, each with the exact value an alert must have.
    #[serde(rename = "match", skip_serializing_if = "Labels::is_empty")]
    pub matchers: Labels,
    pub handlers: Vec<String>,
    /// Go on to the next routes after this one matched.
    #[serde(rename = "continue")]
    pub continue_: bool,
}

/// One `[[alerts.handler]]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandlerConfig {
    pub name: String,
    /// `command`, `webhook` or `alertmanager`.
    pub kind: String,
    /// command: the program and its arguments (no shell).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// webhook: where to POST; alertmanager: the Alertmanager's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// alertmanager: several Alertmanagers (an HA pair), each sent every post; instead of `url`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// alertmanager: how often the alerts still firing are sent again; default 1m.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resend: Option<String>,
    /// webhook, alertmanager: a PEM file of the certificate authorities to trust for an
    /// `https://` URL instead of the built-in (Mozilla) roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// How long one try may take; default 10s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Tries after the first one fails; default 3.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The wait before the first retry, doubled before each next; default 1s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
}

/// What a handler does with an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Command(Vec<String>),
    /// The URL, and the certificate authorities to trust (none: the built-in roots).
    Webhook(String, Option<std::path::PathBuf>),
}

/// The certificates in a PEM file, or why there are none.
pub fn read_certificates(path: &std::path::Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
    let certificates: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certificates.is_empty() {
        return Err(format!("ca_file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display()));
    }
    Ok(certificates)
}

/// A validated `[[alerts.handler]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    pub name: String,
    /// For `kind = "alertmanager"`, a webhook to the first Alertmanager's
    /// endpoint (what `alerts check` shows); [`Handler::alertmanager`] is what is used.
    pub action: Action,
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    /// `kind = "alertmanager"`: where and how often; see [`super::alertmanager`].
    pub alertmanager: Option<Alertmanager>,
}

/// Where a route sends an alert.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Log,
    /// Every running alert-handler plugin.
    Plugins,
    Plugin(String),
    /// A `[[alerts.handler]]`, by name.
    Handler(String),
}

impl Target {
    /// The name as a route writes it.
    pub fn name(&self) -> String {
        match self {
            Target::Log => "log".into(),
            Target::Plugins => "plugins".into(),
            Target::Plugin(p) => format!("plugin:{p}"),
            Target::Handler(h) => h.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Route {
    level: Level,
    matchers: Labels,
    targets: Vec<Target>,
    continue_: bool,
}

/// The validated routing table and handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    routes: Vec<Route>,
    pub handlers: Vec<Handler>,
}

impl Routing {
    /// Checks every route and handler; one message per problem, naming the
    /// route (by number, from 1) or handler and the field.
    pub fn build(routes: &[RouteConfig], handlers: &[HandlerConfig]) -> Result<Routing, Vec<String>> {
        let mut errors = Vec::new();
        let mut built = Vec::new();
        for (i, h) in handlers.iter().enumerate() {
            let what = if h.name.is_empty() { format!("handler #{}", i + 1) } else { format!("handler '{}'", h.name) };
            let mut err = |m: String| errors.push(format!("{what}: {m}"));
            if h.name.is_empty() {
                err("name is missing; add name = \"...\"".into());
            } else if matches!(h.name.as_str(), "log" | "plugins") || h.name.starts_with("plugin:") {
                err(format!("name '{}' is reserved; choose another", h.name));
            } else if handlers[..i].iter().any(|o| o.name == h.name) {
                err("name is used by an earlier handler too; give each its own".into());
            }
            if matches!(h.kind.as_str(), "command" | "webhook") && (!h.urls.is_empty() || h.resend.is_some()) {
                err("urls and resend apply to kind 'alertmanager' only; remove them".into());
            }
            let mut alertmanager = None;
            let action = match h.kind.as_str() {
                "command" if h.command.is_empty() || h.command[0].is_empty() => {
                    err("command is missing; write command = [\"/path/to/program\", \"arg\"]".into());
                    None
                }
                "command" if h.url.is_some() || h.ca_file.is_some() => {
                    err("url and ca_file do not apply to kind 'command'; remove them".into());
                    None
                }
                "command" => Some(Action::Command(h.command.clone())),
                "webhook" if !h.command.is_empty() => {
                    err("command does not apply to kind 'webhook'; remove it".into());
                    None
                }
                "webhook" => match h.url.as_deref() {
                    Some(url) if url.starts_with("http://") && h.ca_file.is_some() => {
                        err(format!("ca_file applies to https:// URLs only; url '{url}' is plain HTTP"));
                        None
                    }
                    Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                        match h.ca_file.as_deref().map(read_certificates).transpose() {
                            Ok(_) => Some(Action::Webhook(url.into(), h.ca_file.clone())),
                            Err(e) => {
                                err(e);
                                None
                            }
                        }
                    }
                    Some(url) => {
                        err(format!("url '{url}' is not an http:// or https:// URL"));
                        None
                    }
                    None => {
                        err("url is missing; write url = \"https://...\"".into());
                        None
                    }
                },
                "alertmanager" => match Alertmanager::build(h) {
                    Ok(am) => {
                        let action = Action::Webhook(am.endpoints[0].clone(), am.ca_file.clone());
                        alertmanager = Some(am);
                        Some(action)
                    }
                    Err(problems) => {
                        for problem in problems {
                            err(problem);
                        }
                        None
                    }
                },
                "" => {
                    err("kind is missing; use command, webhook or alertmanager".into());
                    None
                }
                other => {
                    err(format!(
                        "kind '{other}'; use command, webhook or alertmanager (plugins are routed as 'plugin:NAME')"
                    ));
                    None
                }
            };
            let mut duration = |field: &str, text: &Option<String>, default: Duration| match text {
                None => Some(default),
                Some(t) => match humantime::parse_duration(t) {
                    Ok(d) if !d.is_zero() => Some(d),
                    _ => {
                        err(format!("{field} '{t}' is not a duration above 0; write one like 500ms, 10s or 1m"));
                        None
                    }
                },
            };
            let timeout = duration("timeout", &h.timeout, DEFAULT_TIMEOUT);
            let backoff = duration("backoff", &h.backoff, DEFAULT_BACKOFF);
            if let (Some(action), Some(timeout), Some(backoff)) = (action, timeout, backoff) {
                built.push(Handler {
                    name: h.name.clone(),
                    action,
                    timeout,
                    retries: h.retries.unwrap_or(DEFAULT_RETRIES),
                    backoff,
                    alertmanager,
                });
            }
        }
        let target = |name: &str| -> Result<Target, String> {
            match name {
                "log" => Ok(Target::Log),
                "plugins" => Ok(Target::Plugins),
                _ => match name.strip_prefix("plugin:") {
                    Some("") => Err("handler 'plugin:' names no plugin; write plugin:NAME".into()),
                    Some(p) => Ok(Target::Plugin(p.into())),
                    None if handlers.iter().any(|h| h.name == name) => Ok(Target::Handler(name.into())),
                    None => Err(format!(
                        "handler '{name}' is not defined; define it in [[alerts.handler]] or use log, plugins or plugin:NAME"
                    )),
                },
            }
        };
        let mut table = Vec::new();
        for (i, r) in routes.iter().enumerate() {
            let mut err = |m: String| errors.push(format!("route {}: {m}", i + 1));
            let level = match r.level.as_deref() {
                None => Some(Level::Warning),
                Some(l) => Level::parse(l).or_else(|| {
                    err(format!("level '{l}'; use one of info, warning, error, critical"));
                    None
                }),
            };
            if r.handlers.is_empty() {
                err("handlers is empty; name at least one, like handlers = [\"log\"]".into());
            }
            let mut targets = Vec::new();
            for name in &r.handlers {
                match target(name) {
                    Ok(t) => targets.push(t),
                    Err(m) => err(m),
                }
            }
            if let Some(level) = level {
                table.push(Route { level, matchers: r.matchers.clone(), targets, continue_: r.continue_ });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if routes.is_empty() {
            let mut everything = vec![Target::Plugins];
            everything.extend(built.iter().map(|h| Target::Handler(h.name.clone())));
            table = vec![
                Route { level: Level::Info, matchers: Labels::new(), targets: vec![Target::Log], continue_: true },
                Route { level: Level::Warning, matchers: Labels::new(), targets: everything, continue_: false },
            ];
        }
        Ok(Routing { routes: table, handlers: built })
    }

    /// Where a transition goes: the targets of every matching route, each once,
    /// in route order. Silenced transitions go nowhere.
    pub fn targets(&self, t: &Transition) -> Vec<Target> {
        let mut out: Vec<Target> = Vec::new();
        if t.silenced {
            return out;
        }
        for route in &self.routes {
            let matched = t.level >= route.level
                && route.matchers.iter().all(|(k, v)| match k.as_str() {
                    "rule" => &t.rule == v,
                    _ => t.labels.get(k) == Some(v),
                });
            if matched {
                for target in &route.targets {
                    if !out.contains(target) {
                        out.push(target.clone());
                    }
                }
                if !route.continue_ {
                    break;
                }
            }
        }
        out
    }

    pub fn handler(&self, name: &str) -> Option<&Handler> {
        self.handlers.iter().find(|h| h.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertState;

    fn transition(rule: &str, level: Level, labels: &[(&str, &str)]) -> Transition {
        Transition {
            id: rule.into(),
            rule: rule.into(),
            level,
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            from: AlertState::Pending,
            to: AlertState::Firing,
            value: None,
            message: String::new(),
            at_ms: 0,
            silenced: false,
            ack: None,
        }
    }

    fn parse(text: &str) -> Result<Routing, Vec<String>> {
        #[derive(Deserialize)]
        struct T {
            #[serde(default)]
            route: Vec<RouteConfig>,
            #[serde(default)]
            handler: Vec<HandlerConfig>,
        }
        let t: T = toml::from_str(text).unwrap();
        Routing::build(&t.route, &t.handler)
    }

    #[test]
    fn without_routes_everything_is_logged_and_warnings_go_to_every_handler() {
        let routing = parse("[[handler]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://x\"").unwrap();
        assert_eq!(routing.targets(&transition("r", Level::Info, &[])), [Target::Log]);
        assert_eq!(
            routing.targets(&transition("r", Level::Critical, &[])),
            [Target::Log, Target::Plugins, Target::Handler("hook".into())]
        );
        let mut silenced = transition("r", Level::Critical, &[]);
        silenced.silenced = true;
        assert!(routing.targets(&silenced).is_empty());
    }

    #[test]
    fn first_match_wins_unless_it_continues() {
        let routing = parse(
            r#"
            [[handler]]
            name = "pager"
            kind = "command"
            command = ["page"]
            [[route]]
            level = "critical"
            match = { team = "ops" }
            handlers = ["pager"]
            continue = true
            [[route]]
            level = "error"
            match = { rule = "disk" }
            handlers = ["plugin:jsonl-alerts"]
            [[route]]
            level = "info"
            handlers = ["log"]
            "#,
        )
        .unwrap();
        let pager = Target::Handler("pager".into());
        let jsonl = Target::Plugin("jsonl-alerts".into());
        assert_eq!(routing.targets(&transition("disk", Level::Critical, &[("team", "ops")])), [pager.clone(), jsonl]);
        assert_eq!(routing.targets(&transition("cpu", Level::Critical, &[("team", "ops")])), [pager, Target::Log]);
        assert_eq!(routing.targets(&transition("disk", Level::Warning, &[])), [Target::Log]);
        assert_eq!(routing.targets(&transition("cpu", Level::Error, &[("team", "dev")])), [Target::Log]);
    }

    #[test]
    fn every_bad_route_and_handler_is_named() {
        let errors = parse(
            r#"
            [[handler]]
            name = "log"
            kind = "command"
            [[handler]]
            name = "hook"
            kind = "webhook"
            url = "ftp://x"
            timeout = "soon"
            [[handler]]
            name = "x"
            kind = "email"
            [[route]]
            level = "urgent"
            handlers = ["pagr", "plugin:"]
            [[route]]
            handlers = []
            "#,
        )
        .unwrap_err();
        let expected = [
            "handler 'log': name 'log' is reserved; choose another",
            "handler 'log': command is missing; write command = [\"/path/to/program\", \"arg\"]",
            "handler 'hook': url 'ftp://x' is not an http:// or https:// URL",
            "handler 'hook': timeout 'soon' is not a duration above 0; write one like 500ms, 10s or 1m",
            "handler 'x': kind 'email'; use command, webhook or alertmanager (plugins are routed as 'plugin:NAME')",
            "route 1: level 'urgent'; use one of info, warning, error, critical",
            "route 1: handler 'pagr' is not defined; define it in [[alerts.handler]] or use log, plugins or plugin:NAME",
            "route 1: handler 'plugin:' names no plugin; write plugin:NAME",
            "route 2: handlers is empty; name at least one, like handlers = [\"log\"]",
        ];
        assert_eq!(errors, expected);
    }
}
