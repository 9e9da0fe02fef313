//! `monitor stream`: follows the host's live stream, one line per event, and
//! keeps following across lost connections and host restarts, resuming where
//! it was (progress events and alert transitions missed meanwhile come first).

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use super::UsageError;
use crate::client::sse::next_event;
use crate::error::CommandResult;
use crate::paths::DataDir;
use crate::progress::NodePath;
use crate::stream::{Cursor, Topic};
use crate::top::format::clock;

/// The longest wait between two attempts to reconnect.
const MOST_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct StreamArgs {
    /// What to follow: samples, progress, alerts, plugins, jobs [default: all but samples].
    #[arg(long, value_delimiter = ',', value_name = "TOPIC,...")]
    topics: Vec<String>,
    /// Only this run's progress.
    #[arg(long)]
    run: Option<String>,
    /// Only these metrics in the samples (and the samples topic alone, unless --topics says more).
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    series: Vec<String>,
    /// Start after this cursor (an event id seen before, like p41.a7): what came since is read back first.
    #[arg(long, value_name = "CURSOR")]
    after: Option<String>,
    /// Each message as the host sends it, one JSON object per line.
    #[arg(long)]
    json: bool,
}

pub fn run(data: &DataDir, args: StreamArgs) -> CommandResult<()> {
    let topics: Vec<Topic> = match (args.topics.is_empty(), args.series.is_empty()) {
        (true, true) => Topic::ALL.into_iter().filter(|t| *t != Topic::Samples).collect(),
        (true, false) => vec![Topic::Samples],
        (false, _) => {
            args.topics.iter().map(|t| Topic::parse(t.trim())).collect::<Result<_, _>>().map_err(UsageError)?
        }
    };
    if !args.series.is_empty() && !topics.contains(&Topic::Samples) {
        return Err(UsageError("--series picks metrics of the samples topic; add samples to --topics".into()).into());
    }
    let mut query = format!("topics={}", topics.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","));
    if !args.series.is_empty() {
        query.push_str(&format!("&series={}", args.series.join(",")));
    }
    if let Some(run) = &args.run {
        NodePath::parse(run).map_err(|e| UsageError(format!("--run: {e}")))?;
        query.push_str(&format!("&run={run}"));
    }
    let mut cursor = match &args.after {
        Some(text) => Some(Cursor::parse(text).map_err(UsageError)?.to_string()),
        None => None,
    };

    let mut out = std::io::stdout().lock();
    let mut backoff = Duration::from_secs(1);
    let mut first = true;
    loop {
        // The first connection must work; later ones are retried for ever.
        let mut events = match connect(data, &query, cursor.as_deref()) {
            Ok(events) => events,
            Err(e) if first => return Err(e),
            Err(e) => {
                eprintln!("monitor stream: {e:#}; trying again in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MOST_BACKOFF);
                continue;
            }
        };
        (first, backoff) = (false, Duration::from_secs(1));
        let ended = loop {
            match next_event(&mut events) {
                Ok(Some(event)) => {
                    // Durable events carry the cursor to resume from.
                    if event.id.is_some() {
                        cursor = event.id;
                    }
                    let line = if args.json { event.data } else { describe(&event.data) };
                    writeln!(out, "{line}").and_then(|()| out.flush()).context("writing to stdout")?;
                }
                Ok(None) => break "the host ended the stream".to_string(),
                Err(e) => break format!("the connection broke: {e}"),
            }
        };
        let cursor = cursor.get_or_insert_with(|| Cursor::default().to_string());
        eprintln!("monitor stream: {ended}; reconnecting to resume after '{cursor}'");
    }
}

/// The stream of the host named by `--url`, or else of the one on this data directory.
fn connect(data: &DataDir, query: &str, cursor: Option<&str>) -> CommandResult<impl std::io::BufRead + use<>> {
    let host = crate::client::running(data)?.ok_or_else(|| crate::client::no_host(data, ""))?;
    host.stream(query, cursor)
}

/// One message as a line for people: time, topic, what happened.
fn describe(json: &str) -> String {
    let Ok(message) = serde_json::from_str::<Value>(json) else {
        return json.to_string();
    };
    let data = &message["data"];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let at = data["at_ms"].as_u64().unwrap_or_else(crate::sampler::now_ms);
    let what = match message["topic"].as_str().unwrap_or_default() {
        "progress" => {
            let update = &data["update"];
            let mut parts = vec![text(&data["path"]), text(&update["op"])];
            for field in ["units", "total", "percent"] {
                if let Some(n) = update[field].as_f64() {
                    parts.push(format!("{field}={n}"));
                }
            }
            if let Some(m) = update["message"].as_str() {
                parts.push(format!("· {m}"));
            }
            if data["applied"] == "ignored" {
                parts.push("(ignored: the node had finished)".into());
            }
            format!("progress  {}", parts.join(" "))
        }
        "alerts" => format!(
            "alert     {} {} {} → {} · {}",
            text(&data["level"]).to_uppercase(),
            text(&data["rule"]),
            text(&data["from"]),
            text(&data["to"]),
            text(&data["message"])
        ),
        "plugins" => {
            let plugins = data["plugins"].as_array().cloned().unwrap_or_default();
            let states: Vec<String> =
                plugins.iter().map(|p| format!("{} {}", text(&p["name"]), text(&p["state"]["state"]))).collect();
            format!("plugins   {}", states.join(", "))
        }
        "jobs" => {
            let job = data["job"].as_str().or(data["name"].as_str()).unwrap_or_default();
            let outcome = data["outcome"].as_str().map(|o| format!(" · {o}")).unwrap_or_default();
            format!("job       {job} {}{outcome}", text(&data["event"]))
        }
        "samples" => format!("samples   {}", samples(&data["samples"])),
        "gap" => format!(
            "gap       {} events after {} are no longer kept; the history goes on from {}",
            text(&data["topic"]),
            data["after"],
            data["oldest"]
        ),
        "lagged" => {
            format!("lagged    {} {} messages skipped: this client fell behind", data["missed"], text(&data["topic"]))
        }
        other => format!("{other} {data}"),
    };
    format!("{}  {what}", clock(at))
}

/// A few series as `name{labels}=value`, more as how many.
fn samples(samples: &Value) -> String {
    let samples = samples.as_array().cloned().unwrap_or_default();
    if samples.len() > 8 {
        return format!("{} series", samples.len());
    }
    let one = |s: &Value| {
        let labels: Vec<String> = s["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
        format!("{}{labels}={}", s["name"].as_str().unwrap_or_default(), s["value"])
    };
    samples.iter().map(one).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_one_line_each() {
        let progress = r#"{"topic":"progress","id":3,"data":{"id":3,"seq":1,"at_ms":3723000,"path":"etl/load","update":{"op":"advance","units":4,"message":"rows"},"applied":"applied"}}"#;
        assert_eq!(describe(progress), "01:02:03  progress  etl/load advance units=4 · rows");
        let alert = r#"{"topic":"alerts","id":1,"data":{"seq":1,"rule":"queue-deep","level":"warning","from":"pending","to":"firing","message":"deep","at_ms":0}}"#;
        assert_eq!(describe(alert), "00:00:00  alert     WARNING queue-deep pending → firing · deep");
        let few = r#"{"topic":"samples","data":{"at_ms":0,"samples":[{"name":"cpu","labels":{"core":"0"},"value":12.5},{"name":"load","labels":{},"value":1.0}]}}"#;
        assert_eq!(describe(few), "00:00:00  samples   cpu{core=0}=12.5 load=1.0");
        assert_eq!(describe("not json"), "not json");
    }
}
