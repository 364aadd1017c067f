//! What a node's own host decides for it (issue 24): the ports squall picks for it (`{port.NAME}`) are free on
//! the host that binds them, not on the controller, and the kind's program is found on every host, by its
//! agent, before anything starts there. (The proxy in front of a per-destination kind's node is started on its
//! host too: [`super::Links::add_destination`].)

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use super::{DEADLINE, Procs};
use crate::kind::Kind;
use crate::remote::protocol::{Answer, Op};

impl Procs {
    /// The ports squall picks for node `id` (its kind's `{port.NAME}`), free on `ip`, the address the node
    /// binds them on: picked here for a node of this machine, by its host's agent for a node on another host (a
    /// port free on the controller says nothing of the host). Empty for a kind whose node reports its own
    /// ports. `Err` names the host and what failed.
    pub(in crate::cluster) async fn pick_ports(
        &self,
        id: u64,
        kind: &Kind,
        ip: IpAddr,
    ) -> Result<BTreeMap<String, u16>, String> {
        if !super::super::ports::squall_picks_ports(kind) {
            return Ok(BTreeMap::new());
        }
        match self {
            Procs::Local(_) => super::super::ports::free_ports(ip, &kind.ports),
            Procs::Remote(r) => {
                let op = Op::Ports {
                    names: kind.ports.clone(),
                    bind: Some(ip),
                };
                match r.call(id, op).await? {
                    Answer::Ports { ports } => Ok(ports),
                    other => Err(format!("the agent answered `ports` with {other:?}")),
                }
            }
        }
    }

    /// Checks that every host can run the node program `program` (as the kind or `--node-bin` names it: a path,
    /// or a name its agent looks up on its `PATH`), asking all hosts at once. squall's own program (the
    /// `{squall}` kinds) is the agent's own, so never asked for; nor is anything here, where the program was
    /// found before. `Err` has one line per host that cannot, each naming the host and what it did not find.
    pub(in crate::cluster) async fn check_program(&self, program: &Path) -> Result<(), String> {
        let Procs::Remote(r) = self else {
            return Ok(());
        };
        if r.own_exe.as_deref() == Some(program) {
            return Ok(());
        }
        let asks = (0..r.agents.len()).map(|h| {
            let client = r.client(h);
            let op = Op::Program {
                program: program.display().to_string(),
            };
            async move { client?.call(op, DEADLINE).await }
        });
        let missing: Vec<String> = futures::future::join_all(asks)
            .await
            .into_iter()
            .filter_map(|answer| match answer {
                Ok(Answer::Program { .. }) => None,
                Ok(other) => Some(format!("an agent answered `program` with {other:?}")),
                Err(e) => Some(e),
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("\n"))
        }
    }
}
