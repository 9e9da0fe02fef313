//! Alert rules and the lifecycle of the alerts they raise: a pure,
//! deterministic engine. It does no I/O and never reads the clock; the daemon
//! feeds it [`Inputs`] and `now_ms`, stores the [`Transition`]s it returns and
//! routes them.
//!
//! **Rules** ([`config`], [`rule`]) come from the `[alerts]` table of the config
//! file, plus built-in defaults that can be replaced or disabled by name.
//! [`validate`] reports every bad field at once, each error naming the rule, the
//! field and the fix.
//!
//! **State machine** ([`lifecycle`]): an instance goes inactive → pending (the
//! condition holds, `for` has not elapsed) → firing → resolved. A pending
//! instance whose condition fails goes back to inactive and emits nothing; with
//! `for = 0` it fires at the first evaluation. Only firing, acknowledged,
//! resolved and repeats are emitted. Each rule raises one instance per distinct
//! series (or node, or plugin); its id, `rule{label="value",...}`, is stable.
//!
//! **Hysteresis**: a threshold rule with `clear` fires when `value op threshold`
//! and, once firing, resolves only when the value is strictly past `clear`
//! (fire above 90, resolve below 80), so a value wavering around the threshold
//! does not flap. Without `clear` it resolves as soon as the comparison fails.
//!
//! **Acknowledge** marks a firing alert as seen (by whom, with a note) until it
//! resolves, and stops its repeats. **Silences** ([`silence`]) match alerts by
//! labels, rule and level until a time: state still changes, but transitions
//! are marked `silenced` for routing to skip; a firing alert whose firing was
//! silenced is emitted once more when the silence ends.
//!
//! **Repeat**: a firing alert is emitted once; a rule's `repeat` interval
//! re-emits it (`from == to == firing`) while it fires unacknowledged.
//!
//! Time is in milliseconds on the caller's clock.

pub mod alertmanager;
pub mod config;
pub mod derive;
pub mod dispatch;
pub mod eval;
pub mod lifecycle;
pub mod route;
pub mod rule;
pub mod saved;
pub mod service;
pub mod silence;
pub mod template;

pub use config::{AlertsConfig, BUILTIN, RuleConfig, builtin, validate};
pub use eval::{AlertError, Engine, Inputs, JobInput, NodeInput};
pub use lifecycle::{Ack, Alert, AlertState, Transition, alert_id};
pub use route::{Routing, Target};
pub use rule::{Labels, Level, Op, Rule, RuleError, RuleKind};
pub use saved::Saved;
pub use service::Alerting;
pub use silence::Silence;
pub use template::Template;

#[cfg(test)]
mod tests;
