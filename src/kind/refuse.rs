//! Which commands a kind cannot take, and why, from its file alone: a fault family its `[limits]` refuse
//! (with the file's reason), a control its `[controls]` do not list, a message filter with no classifier, a
//! membership change with no `[membership]` driver or one its driver cannot make. The live session asks it
//! before performing a command; `squall run` asks it of every step when it loads a scenario, so a step the
//! kind refuses stops the run (and `--dry-run`) with exit 2 instead of ending `unknown`. Every refusal names
//! the kind file, where the reason is written and where a person changes it.

use crate::command::{Command, FaultKind};

use super::Kind;
use super::membership::MemberChange;

impl Kind {
    /// Why this kind cannot take `cmd`, if it cannot (the text ends `(nothing was done)`).
    pub fn refuses(&self, cmd: &Command) -> Option<String> {
        let messages =
            |f: &crate::command::FaultCmd| !f.only.is_empty() || f.kind == FaultKind::Hold;
        let family = match cmd {
            Command::Clock(..) => Some("clock"),
            Command::Disk(..) | Command::PowerCut(..) => Some("disk"),
            Command::Pause(_) | Command::TogglePause(_) => Some("pause"),
            Command::Transfer(_) => Some("transfer"),
            Command::Wipe(_) => Some("wipe"),
            Command::Fault(f) | Command::ToggleFault(f) if messages(f) => Some("messages"),
            Command::Step(..) | Command::DropHeld(..) | Command::Release(_) => Some("messages"),
            c if c.is_membership() => Some("membership"),
            _ => None,
        };
        if let Some(family) = family
            && let Some(why) = self.limit(family)
        {
            let what = super::LIMIT_FAMILIES
                .iter()
                .find(|(f, _)| *f == family)
                .map_or(family, |(_, w)| w);
            return Some(format!(
                "node kind `{}` cannot take {what}: {why} (said by [limits] {family} in {}; nothing was done)",
                self.name, self.source
            ));
        }
        let control = match cmd {
            Command::Freeze => Some("freeze"),
            Command::Thaw => Some("thaw"),
            Command::Timeout(_) => Some("timeout"),
            Command::Heartbeat => Some("heartbeat"),
            Command::Transfer(_) => Some("transfer"),
            _ => None,
        };
        if let Some(control) = control
            && !self.controls.contains_key(control)
        {
            // These go through squall's control RPC; a node of another kind would not answer, and the wait
            // for it blamed the nodes (tester4 F4).
            return Some(format!(
                "node kind `{}` has no `{control}` control: its file ({}) does not list it under [controls] \
                 (nothing was done)",
                self.name, self.source
            ));
        }
        if let Command::Fault(f) | Command::ToggleFault(f) = cmd
            && !f.only.is_empty()
            && self.peers.classifier == "none"
        {
            return Some(format!(
                "node kind `{}` has no classifier (`[peers] classifier = \"none\"` in {}), so its frames have \
                 no message kinds and `only …` cannot pick any (nothing was done); drop `only`",
                self.name, self.source
            ));
        }
        if cmd.is_membership() {
            match self.membership_driver() {
                Err(why) => {
                    return Some(format!(
                        "node kind `{}` cannot change membership: {why} (its file: {}; nothing was done)",
                        self.name, self.source
                    ));
                }
                Ok(driver) => {
                    if let Command::Demote(n) = cmd
                        && let Some(why) = driver.cannot(MemberChange::Demote(*n))
                    {
                        return Some(format!(
                            "node kind `{}` cannot demote node {n}: {why} (its file: {}, [membership]; nothing \
                             was done)",
                            self.name, self.source
                        ));
                    }
                }
            }
        }
        None
    }
}
