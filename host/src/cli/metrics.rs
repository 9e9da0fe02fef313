//! `monitor metrics list|query`: the metric history.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Subcommand;

use super::UsageError;
use crate::client::Client;
use crate::error::CommandResult;
use crate::metrics::parse_labels;
use crate::store::metrics::SeriesPoints;

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Every series in the history, with its unit, and the database's size.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One metric's history: a sparkline per series, or the points with --json.
    Query {
        name: String,
        /// How far back, like 10m, 2h or 7d.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        since: Duration,
        /// Only series with these labels, like core=0,mode=user.
        #[arg(long, value_name = "K=V,...", value_parser = parse_labels)]
        labels: Option<BTreeMap<String, String>>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(client: &dyn Client, command: MetricsCommand) -> CommandResult<()> {
    match command {
        MetricsCommand::List { json } => {
            let listing = client.metric_series()?;
            if json {
                super::print_json(&listing)?;
                return Ok(());
            }
            for series in &listing.series {
                println!("{:<72} {}", series.key(), series.unit);
            }
            println!("{} series; database {:.1} MiB", listing.series.len(), listing.database_bytes as f64 / 1048576.0);
        }
        MetricsCommand::Query { name, since, labels, json } => {
            let labels = labels.unwrap_or_default();
            let since_ms = crate::sampler::now_ms().saturating_sub(since.as_millis() as u64);
            let found = client.metric_history(&name, &labels, since_ms)?;
            if found.is_empty() {
                let known: Vec<String> = client.metric_series()?.series.into_iter().map(|s| s.name).collect();
                let mut known: Vec<String> =
                    known.into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
                let more = known.len().saturating_sub(12);
                known.truncate(12);
                let suffix = if more > 0 { format!(" and {more} more") } else { String::new() };
                return Err(UsageError(format!(
                    "no series named '{name}'{}; known metrics: {}{suffix} (see 'monitor metrics list')",
                    if labels.is_empty() { String::new() } else { " with those labels".into() },
                    known.join(", ")
                ))
                .into());
            }
            if json {
                super::print_json(&found)?;
            } else {
                for history in &found {
                    println!("{}", line(history));
                }
            }
        }
    }
    Ok(())
}

/// `name{labels}  ▁▂▄█▆  last 42.0 percent (min 1, max 97, 600 points)`.
fn line(history: &SeriesPoints) -> String {
    let values: Vec<f64> = history.points.iter().map(|p| p.value).collect();
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let last = values.last().copied().unwrap_or(f64::NAN);
    format!(
        "{:<48} {}  last {} {} (min {}, max {}, {} points)",
        history.series.key(),
        sparkline(&values, 40),
        short(last),
        history.series.unit,
        short(min),
        short(max),
        values.len()
    )
}

/// The values squeezed into `width` bars (each the mean of its share).
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() {
        return String::new();
    }
    let buckets: Vec<f64> = (0..width.min(values.len()))
        .map(|i| {
            let (from, to) =
                (i * values.len() / width.min(values.len()), (i + 1) * values.len() / width.min(values.len()));
            values[from..to].iter().sum::<f64>() / (to - from) as f64
        })
        .collect();
    let (min, max) = buckets.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    buckets
        .iter()
        .map(|v| if max > min { BARS[(((v - min) / (max - min)) * 7.0).round() as usize] } else { BARS[3] })
        .collect()
}

fn short(value: f64) -> String {
    if value.is_nan() {
        "-".into()
    } else if value.abs() >= 1e6 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters() {
        let got = parse_labels("core=0, mode = user").unwrap();
        assert_eq!(got, BTreeMap::from([("core".into(), "0".into()), ("mode".into(), "user".into())]));
        assert!(parse_labels("core").unwrap_err().contains("'core' is not a label filter"));
        assert!(parse_labels("=1").is_err());
    }

    #[test]
    fn sparklines_scale_and_squeeze() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 8), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[0.0, 0.0, 7.0, 7.0], 2), "▁█");
        assert_eq!(sparkline(&[5.0; 3], 10), "▄▄▄", "flat and shorter than the width");
        assert_eq!(sparkline(&[], 10), "");
    }
}
