//! `monitor jobs ...`: the running host's watch jobs.

use clap::Subcommand;

use crate::client::Client;
use crate::error::CommandResult;
use crate::watch::JobView;

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Every watch job: state, runs, failures, the last run and its result.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop starting commands for a job (a running one finishes); changes are kept for resume.
    Pause { name: String },
    /// Let a paused job run again, starting with what changed meanwhile.
    Resume { name: String },
    /// Run a job's command now, for its whole tree.
    Run { name: String },
}

pub fn run(client: &dyn Client, command: JobsCommand) -> CommandResult<()> {
    let (name, action, done) = match command {
        JobsCommand::List { json } => return list(client, json),
        JobsCommand::Pause { name } => (name, "pause", "paused"),
        JobsCommand::Resume { name } => (name, "resume", "resumed"),
        JobsCommand::Run { name } => (name, "run", "triggered"),
    };
    let job = client.job_action(&name, action)?;
    println!("{} {done}", job.name);
    Ok(())
}

fn list(client: &dyn Client, json: bool) -> CommandResult<()> {
    let jobs = client.jobs()?;
    if json {
        super::print_json(&jobs)?;
        return Ok(());
    }
    if jobs.is_empty() {
        println!("no watch jobs; declare them as [[watch]] tables in the host config");
        return Ok(());
    }
    println!("{:<20} {:<8} {:>6} {:>8} {:>7}  {:<24} ROOT", "JOB", "STATE", "RUNS", "FAILURES", "RESCANS", "LAST RUN");
    for job in &jobs {
        println!(
            "{:<20} {:<8} {:>6} {:>8} {:>7}  {:<24} {}",
            job.name,
            job.state,
            job.runs,
            job.failures,
            job.rescans,
            last(job),
            job.roots.first().map(|r| r.display().to_string()).unwrap_or_default()
        );
    }
    Ok(())
}

/// The last run in a few words: `#12 exit 0, 3s ago`.
fn last(job: &JobView) -> String {
    let Some(run) = &job.last else {
        return "never".into();
    };
    let ago = crate::sampler::now_ms().saturating_sub(run.finished_ms) / 1000;
    let ago = humantime::format_duration(std::time::Duration::from_secs(ago));
    format!("#{} {}, {ago} ago", run.seq, run.outcome)
}
