//! Clock fault commands of `squall up --disk-faults` as values (`crate::cluster::clock` performs them).
//!
//! ```text
//! clock NODE +DUR|-DUR    clock NODE xRATE    clock NODE strobe DUR    clock NODE heal
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::fault::{BadDuration, human, parse_duration, read_duration};
use super::target::Target;

/// A clock fault to set on one node, or `Heal` to make its clock true again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClockAction {
    /// Jump the clock by this many milliseconds (negative: back).
    Jump(i64),
    /// Run the clock at this rate (0.5 … 4).
    Rate(f64),
    /// Flip the clock between its offset and this much ahead, every second.
    Strobe(Duration),
    /// Make the clock true again.
    Heal,
}

impl std::fmt::Display for ClockAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClockAction::Jump(ms) => write!(
                f,
                "{}{}",
                if *ms < 0 { '-' } else { '+' },
                human(Duration::from_millis(ms.unsigned_abs()))
            ),
            ClockAction::Rate(r) => write!(f, "x{r}"),
            ClockAction::Strobe(d) => write!(f, "strobe {}", human(*d)),
            ClockAction::Heal => f.write_str("heal"),
        }
    }
}

/// The largest clock jump either way, and the furthest a node's clock may be from true time
/// (`squall_chaos::clock::MAX_OFFSET`).
pub const MAX_JUMP: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_JUMP_WORDS: &str = "7d (168h)";

/// The largest strobe: it flips every second (`squall_chaos::clock::STROBE_PERIOD`).
pub const MAX_STROBE: Duration = Duration::from_secs(1);

/// Help for the console.
pub const HELP: &str = "clock N +1h|-30s|x4|x0.5|strobe 200ms|heal";

/// Parses the words after `clock`.
pub fn parse_clock(rest: &[&str]) -> Result<(Target, ClockAction), String> {
    let target = match rest.first().copied() {
        None => return Err("`clock` needs a node id (or `leader`), e.g. `clock 2 +1h`".into()),
        Some("leader") => Target::Leader,
        Some(w) => Target::Node(
            w.parse()
                .map_err(|_| format!("`{w}` is not a node id (expected a number or `leader`)"))?,
        ),
    };
    let usage =
        "use `clock N +1h`, `clock N -30s`, `clock N x4`, `clock N strobe 200ms` or `clock N heal`";
    let action = match rest.get(1..).unwrap_or(&[]) {
        [w] if w.starts_with('+') || w.starts_with('-') => {
            let too_far = || {
                format!(
                    "`{w}` is too far: a clock jump is at most ±{MAX_JUMP_WORDS}, the furthest a node's \
                     clock may be from true time"
                )
            };
            let d = read_duration(&w[1..]).map_err(|e| match e {
                BadDuration::NotOne => format!("`{w}` is not a clock jump like +1h or -30s"),
                BadDuration::TooLong => format!(
                    "{}: a clock jump is at most ±{MAX_JUMP_WORDS}, the furthest a node's clock may be \
                     from true time",
                    crate::units::too_long(w)
                ),
            })?;
            if d > MAX_JUMP {
                return Err(too_far());
            }
            let ms = i64::try_from(d.as_millis()).map_err(|_| format!("`{w}` is too far"))?;
            ClockAction::Jump(if w.starts_with('-') { -ms } else { ms })
        }
        [w] if w.starts_with('x') || w.starts_with('×') => {
            let num = w.trim_start_matches(['x', '×']);
            let r: f64 = num
                .parse()
                .map_err(|_| format!("`{w}` is not a clock rate like x4 or x0.5"))?;
            if !(0.5..=4.0).contains(&r) {
                return Err(format!("clock rate {r} is outside x0.5 … x4"));
            }
            ClockAction::Rate(r)
        }
        ["strobe", d] => {
            let d = parse_duration(d, "duration")?;
            if d.is_zero() {
                return Err("a strobe needs a size above 0".into());
            }
            if d > MAX_STROBE {
                return Err(format!(
                    "`strobe {}` is too large: a strobe flips every second, so it is at most 1s",
                    rest[2]
                ));
            }
            ClockAction::Strobe(d)
        }
        ["heal"] => ClockAction::Heal,
        [] => return Err(format!("`clock` needs a fault; {usage}")),
        other => {
            return Err(format!(
                "unknown clock fault `{}`; {usage}",
                other.join(" ")
            ));
        }
    };
    Ok((target, action))
}
