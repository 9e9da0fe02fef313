//! A watch job as the user writes it (`[[watch]]` in the host config, or the
//! flags of `monitor watch-files`), and the validated [`JobSpec`] the host runs.
//!
//! Validation happens once, before anything is watched, and every error names
//! the job, the field, the value and the fix.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest job name: the progress run `watch-NAME` must be a valid path segment.
pub const MAX_NAME_BYTES: usize = 58;

/// One `[[watch]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Letters, digits, `_`, `-`; names the job in `monitor jobs` and its progress run `watch-NAME`.
    pub name: String,
    /// Directories (or files) to watch; the first is the job's project root.
    pub paths: Vec<PathBuf>,
    /// Watch subdirectories too.
    #[serde(default = "yes")]
    pub recursive: bool,
    /// Globs a changed path must match (any of them); none means every path.
    /// A glob without `/` matches a file name at any depth (`*.rs`); one with
    /// `/` matches the path relative to the watched root (`src/**/*.rs`).
    #[serde(default)]
    pub include: Vec<String>,
    /// Globs of paths to leave out, matched like `include`; a matching directory
    /// leaves out everything below it.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Honour `.gitignore`, `.ignore` and `.git/info/exclude` files in the watched trees.
    #[serde(default = "yes")]
    pub ignore_files: bool,
    /// How long the tree must be quiet before the changes are handed over, like `100ms`.
    #[serde(default = "default_debounce")]
    pub debounce: String,
    /// What runs on created or modified files (and on deleted ones without `on_delete`).
    pub command: CommandLine,
    /// What runs on deleted files, if they need another command.
    #[serde(default)]
    pub on_delete: Option<CommandLine>,
    /// Run the command through `sh -c` (with `pass = "args"` the paths are `"$@"`).
    #[serde(default)]
    pub shell: bool,
    /// How the command gets the paths.
    #[serde(default)]
    pub pass: Pass,
    /// What happens to changes that arrive while the command runs.
    #[serde(default)]
    pub busy: Busy,
    /// Longest a command may run, like `10m`; none means no limit.
    #[serde(default)]
    pub timeout: Option<String>,
    /// How long a command has between SIGTERM and SIGKILL when it is stopped.
    #[serde(default = "default_grace")]
    pub grace: String,
    /// The command's working directory [default: the first path].
    #[serde(default)]
    pub workdir: Option<PathBuf>,
}

fn yes() -> bool {
    true
}

fn default_debounce() -> String {
    "100ms".into()
}

fn default_grace() -> String {
    "5s".into()
}

/// A command as an argv list, or (with `shell = true`) a shell line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    Argv(Vec<String>),
    Line(String),
}

/// How the changed paths reach the command. Whatever the choice, they are in
/// `MONITOR_WATCH_PATHS` too, one a line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Pass {
    /// Only in `MONITOR_WATCH_PATHS`: the command runs as written (as in
    /// watchexec), so `cargo test` is never handed a path as a test filter.
    #[default]
    Env,
    /// As arguments after the command's own.
    Args,
    /// As one JSON object on stdin: `{"job","root","reason","paths":[…]}`.
    Stdin,
    /// One run per path, the path as the last argument.
    Each,
}

/// What to do with changes that arrive while the command runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Busy {
    /// Keep them, coalesced into one next batch that runs when the command ends.
    #[default]
    Queue,
    /// Drop them (counted, and reported as [`super::JobEvent::Skipped`]).
    Skip,
    /// Stop the running command (SIGTERM to its group, SIGKILL after the grace
    /// period) and run again with them.
    Restart,
}

/// A validated command: the program and its arguments, ready to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandSpec {
    pub argv: Vec<String>,
}

/// A job the host can run: everything checked, durations parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub name: String,
    pub paths: Vec<PathBuf>,
    pub recursive: bool,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub ignore_files: bool,
    pub debounce: Duration,
    pub command: CommandSpec,
    pub on_delete: Option<CommandSpec>,
    pub pass: Pass,
    pub busy: Busy,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    pub workdir: PathBuf,
}

impl JobSpec {
    /// The job's project root: its first path.
    pub fn root(&self) -> &std::path::Path {
        &self.paths[0]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("watch job '{job}': {field} = '{value}' {problem}; {fix}")]
    Field { job: String, field: &'static str, value: String, problem: &'static str, fix: &'static str },
    #[error("watch job '{job}': {field} {problem}; {fix}")]
    Missing { job: String, field: &'static str, problem: &'static str, fix: &'static str },
    #[error("watch job '{job}': {field} glob '{glob}' is not valid ({reason}); write one like '*.rs' or 'src/**'")]
    Glob { job: String, field: &'static str, glob: String, reason: String },
    #[error("watch job '{job}' is declared twice; give each [[watch]] its own name")]
    Duplicate { job: String },
}

impl JobConfig {
    /// Checks everything that can be checked without touching the file system.
    pub fn validate(&self) -> Result<JobSpec, ConfigError> {
        let job = self.name.clone();
        let field = |field, value: &str, problem, fix| ConfigError::Field {
            job: job.clone(),
            field,
            value: value.to_string(),
            problem,
            fix,
        };
        let missing = |field, problem, fix| ConfigError::Missing { job: job.clone(), field, problem, fix };
        if !valid_name(&self.name) {
            return Err(field(
                "name",
                &self.name,
                "is not a job name",
                "use 1 to 58 letters, digits, '_' or '-', starting with a letter or digit",
            ));
        }
        if self.paths.is_empty() {
            return Err(missing("paths", "is empty", "name at least one directory to watch"));
        }
        if let Some(p) = self.paths.iter().find(|p| p.as_os_str().is_empty()) {
            return Err(field("paths", &p.display().to_string(), "has an empty path", "name a directory"));
        }
        let debounce = duration(&self.debounce).filter(|d| *d <= Duration::from_secs(60)).ok_or_else(|| {
            field("debounce", &self.debounce, "is not a duration up to 60s", "write one like 100ms or 2s")
        })?;
        let grace = duration(&self.grace)
            .filter(|d| *d <= Duration::from_secs(600))
            .ok_or_else(|| field("grace", &self.grace, "is not a duration up to 10m", "write one like 5s"))?;
        let timeout = match &self.timeout {
            None => None,
            Some(text) => Some(
                duration(text)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| field("timeout", text, "is not a duration", "write one like 30s or 10m"))?,
            ),
        };
        let command = self.command_spec("command", &self.command)?;
        let on_delete = self.on_delete.as_ref().map(|c| self.command_spec("on_delete", c)).transpose()?;
        for (name, globs) in [("include", &self.include), ("exclude", &self.exclude)] {
            for glob in globs {
                super::filter::glob(glob).map_err(|reason| ConfigError::Glob {
                    job: job.clone(),
                    field: name,
                    glob: glob.clone(),
                    reason,
                })?;
            }
        }
        Ok(JobSpec {
            name: self.name.clone(),
            paths: self.paths.clone(),
            recursive: self.recursive,
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            ignore_files: self.ignore_files,
            debounce,
            command,
            on_delete,
            pass: self.pass,
            busy: self.busy,
            timeout,
            grace,
            workdir: self.workdir.clone().unwrap_or_else(|| self.paths[0].clone()),
        })
    }

    fn command_spec(&self, field: &'static str, line: &CommandLine) -> Result<CommandSpec, ConfigError> {
        let job = self.name.clone();
        let argv = match (line, self.shell) {
            (CommandLine::Argv(argv), _) if argv.is_empty() || argv[0].is_empty() => {
                return Err(ConfigError::Missing {
                    job,
                    field,
                    problem: "is empty",
                    fix: "write the program and its arguments, like [\"make\", \"test\"]",
                });
            }
            (CommandLine::Line(line), false) => {
                return Err(ConfigError::Field {
                    job,
                    field,
                    value: line.clone(),
                    problem: "is a string but shell is off",
                    fix: "write an argv list like [\"make\", \"test\"] or set shell = true",
                });
            }
            (CommandLine::Line(line), true) if line.trim().is_empty() => {
                return Err(ConfigError::Missing { job, field, problem: "is empty", fix: "write a shell line" });
            }
            // `sh -c LINE monitor-watch PATHS...`: the paths are "$@" in the line.
            (CommandLine::Line(line), true) => vec!["sh".into(), "-c".into(), line.clone(), "monitor-watch".into()],
            (CommandLine::Argv(argv), true) => {
                vec!["sh".into(), "-c".into(), argv.join(" "), "monitor-watch".into()]
            }
            (CommandLine::Argv(argv), false) => argv.clone(),
        };
        Ok(CommandSpec { argv })
    }
}

/// Validates every job; names must be unique.
pub fn validate_all(jobs: &[JobConfig]) -> Result<Vec<JobSpec>, ConfigError> {
    let mut seen = std::collections::HashSet::new();
    let mut specs = Vec::with_capacity(jobs.len());
    for job in jobs {
        let spec = job.validate()?;
        if !seen.insert(spec.name.clone()) {
            return Err(ConfigError::Duplicate { job: spec.name });
        }
        specs.push(spec);
    }
    Ok(specs)
}

/// A job name that makes a valid progress run `watch-NAME`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

fn duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<JobSpec, String> {
        #[derive(Deserialize)]
        struct File {
            watch: Vec<JobConfig>,
        }
        let file: File = toml::from_str(text).map_err(|e| e.message().to_string())?;
        validate_all(&file.watch).map(|mut v| v.remove(0)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_fill_what_is_not_written() {
        let spec = parse("[[watch]]\nname = \"docs\"\npaths = [\"/p\"]\ncommand = [\"make\", \"html\"]").unwrap();
        assert_eq!(spec.debounce, Duration::from_millis(100));
        assert_eq!(spec.grace, Duration::from_secs(5));
        assert_eq!((spec.pass, spec.busy, spec.timeout), (Pass::Env, Busy::Queue, None));
        assert!(spec.recursive && spec.ignore_files);
        assert_eq!(spec.command.argv, ["make", "html"]);
        assert_eq!(spec.workdir, PathBuf::from("/p"));
    }

    #[test]
    fn a_shell_line_gets_the_paths_as_its_arguments() {
        let spec = parse(
            "[[watch]]\nname = \"a\"\npaths = [\"/p\"]\nshell = true\ncommand = \"echo \\\"$@\\\"\"\non_delete = [\"rm\", \"-f\"]\nbusy = \"restart\"\npass = \"each\"\ntimeout = \"2s\"",
        )
        .unwrap();
        assert_eq!(spec.command.argv, ["sh", "-c", "echo \"$@\"", "monitor-watch"]);
        assert_eq!(spec.on_delete.unwrap().argv, ["sh", "-c", "rm -f", "monitor-watch"]);
        assert_eq!((spec.pass, spec.busy, spec.timeout), (Pass::Each, Busy::Restart, Some(Duration::from_secs(2))));
    }

    #[test]
    fn the_host_config_reads_watch_tables() {
        let path = std::path::Path::new("host.toml");
        let text = "[[watch]]\nname = \"x\"\npaths = [\"/p\"]\ncommand = [\"true\"]\n";
        let config = crate::config::HostConfig::parse(text, path).unwrap();
        assert_eq!(config.watch_jobs()[0].name, "x");
        let err = crate::config::HostConfig::parse(&format!("{text}debounce = \"a\""), path).unwrap_err();
        assert!(err.to_string().starts_with("config file host.toml: watch job 'x': debounce = 'a' is not"), "{err}");
    }

    #[test]
    fn errors_name_the_job_the_field_and_the_fix() {
        let base = "[[watch]]\npaths = [\"/p\"]\ncommand = [\"true\"]\n";
        let cases = [
            ("name = \"my job\"", "watch job 'my job': name = 'my job' is not a job name; use 1 to 58"),
            (
                "name = \"j\"\ndebounce = \"soon\"",
                "watch job 'j': debounce = 'soon' is not a duration up to 60s; write",
            ),
            ("name = \"j\"\ntimeout = \"0s\"", "watch job 'j': timeout = '0s' is not a duration"),
            ("name = \"j\"\ngrace = \"1h\"", "watch job 'j': grace = '1h' is not a duration up to 10m"),
            ("name = \"j\"\ninclude = [\"a[\"]", "watch job 'j': include glob 'a[' is not valid"),
            ("name = \"j\"\nbusy = \"wait\"", "unknown variant `wait`, expected one of `queue`, `skip`, `restart`"),
            ("name = \"j\"\nwatch_dirs = 1", "unknown field `watch_dirs`"),
        ];
        for (extra, expected) in cases {
            let err = parse(&format!("{base}{extra}")).unwrap_err();
            assert!(err.contains(expected), "{extra:?}: {err}");
        }
        let err = parse("[[watch]]\nname = \"j\"\npaths = []\ncommand = [\"x\"]").unwrap_err();
        assert!(err.contains("watch job 'j': paths is empty; name at least one directory"), "{err}");
        let err = parse("[[watch]]\nname = \"j\"\npaths = [\"/p\"]\ncommand = []").unwrap_err();
        assert!(err.contains("watch job 'j': command is empty"), "{err}");
        let err = parse("[[watch]]\nname = \"j\"\npaths = [\"/p\"]\ncommand = \"make\"").unwrap_err();
        assert!(err.contains("command = 'make' is a string but shell is off; write an argv list"), "{err}");
        let twice = "[[watch]]\nname = \"j\"\npaths = [\"/p\"]\ncommand = [\"x\"]\n";
        let err = parse(&format!("{twice}{twice}")).unwrap_err();
        assert_eq!(err, "watch job 'j' is declared twice; give each [[watch]] its own name");
    }
}
