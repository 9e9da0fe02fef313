//! `--hosts`: one table for every host of a hosts file ([`crate::client::fleet`]),
//! each row naming its host, and a line for each host that did not answer.

use serde::Serialize;

use crate::error::{CommandError, CommandResult, ErrorKind};

/// One host's answer, as `--json` prints it.
#[derive(Serialize)]
struct Answer<'a, T> {
    host: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<&'a [T]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Prints every host's rows under `header` with a HOST column first (or JSON);
/// an error when any host did not answer, after the rows of those that did.
pub fn print<T: Serialize>(
    answers: &[(String, Result<Vec<T>, String>)],
    json: bool,
    header: &str,
    row: impl Fn(&T) -> String,
) -> CommandResult<()> {
    let width = answers.iter().map(|(host, _)| host.chars().count()).max().unwrap_or(4).max(4);
    if json {
        let out: Vec<Answer<T>> = answers
            .iter()
            .map(|(host, answer)| Answer {
                host,
                items: answer.as_ref().ok().map(Vec::as_slice),
                error: answer.as_ref().err().map(String::as_str),
            })
            .collect();
        super::print_json(&out)?;
    } else {
        println!("{:<width$}  {header}", "HOST");
        for (host, answer) in answers {
            for item in answer.iter().flatten() {
                println!("{host:<width$}  {}", row(item).trim_end());
            }
        }
        for (host, error) in answers.iter().filter_map(|(h, a)| Some((h, a.as_ref().err()?))) {
            println!("{host:<width$}  did not answer: {error}");
        }
    }
    let failed = answers.iter().filter(|(_, a)| a.is_err()).count();
    if failed > 0 {
        let message = format!("{failed} of {} hosts did not answer", answers.len());
        return Err(CommandError::new(ErrorKind::Unreachable, message));
    }
    Ok(())
}
