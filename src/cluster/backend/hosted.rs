//! Readying the hosts for a cluster's node kind before any node starts (issue 24): every program its nodes
//! run must be on its host ([`Remote::check_programs`]), and a kind whose nodes call the controller's own
//! services (Maelstrom's kv services) gets them forwarded to each host's loopback over that host's ssh
//! connection ([`Remote::forward_to_hosts`], [`crate::remote::forward`]). [`Procs::services_for`] says where
//! node N's bridge reaches them.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{DEADLINE, Procs, Remote};
use crate::remote::protocol::{Answer, Op};

impl Remote {
    /// Asks every host whether each of `programs` (absolute paths, the same on every host) is an executable
    /// file there. `Err` (for a person, exit 2) names each host that lacks one, the path, and what to do;
    /// nothing was started then.
    pub(in crate::cluster) async fn check_programs(
        &self,
        programs: &[PathBuf],
    ) -> Result<(), String> {
        if programs.is_empty() {
            return Ok(());
        }
        let paths: Vec<String> = programs.iter().map(|p| p.display().to_string()).collect();
        let asks = (0..self.agents.len()).map(|h| {
            let client = self.client(h);
            let op = Op::Programs {
                paths: paths.clone(),
            };
            async move { client?.call(op, DEADLINE).await }
        });
        let mut refused = Vec::new();
        for (a, answer) in self
            .agents
            .iter()
            .zip(futures::future::join_all(asks).await)
        {
            match answer {
                Ok(Answer::Notes { notes }) => refused.extend(
                    notes
                        .into_iter()
                        .map(|n| format!("host {} has no program {n}", a.label)),
                ),
                Ok(other) => refused.push(format!(
                    "host {}: the agent answered {other:?} when asked for its programs",
                    a.label
                )),
                Err(e) => refused.push(format!("host {}: {e}", a.label)),
            }
        }
        if refused.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{}; every host runs its nodes' programs at the same path as here: install them there (copy \
             them to that path and chmod +x), or drop --hosts",
            refused.join("; ")
        ))
    }

    /// Forwards `here` (a port of this machine's loopback) to a port of each host's loopback, over that
    /// host's ssh connection. `Err` names the host and what to check.
    pub(in crate::cluster) async fn forward_to_hosts(
        &self,
        here: SocketAddr,
    ) -> Result<(), String> {
        let asks = self.ssh.iter().map(|h| h.forward_here(here.port()));
        for r in futures::future::join_all(asks).await {
            r?;
        }
        Ok(())
    }
}

impl Procs {
    /// Where node `id` reaches the controller's service listening at `here` (this machine's loopback): `here`
    /// for a node on this machine, the forwarded port of its host's loopback for a node on a host (`None`
    /// when no forward was made for it).
    pub(in crate::cluster) fn services_for(&self, id: u64, here: SocketAddr) -> Option<SocketAddr> {
        match self {
            Procs::Local(_) => Some(here),
            Procs::Remote(r) => {
                let (h, _) = r.agent_of(id).ok()?;
                r.ssh.get(h)?.forwarded(here.port())
            }
        }
    }
}
