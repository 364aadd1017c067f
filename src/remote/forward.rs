//! Reaching a service of the controller from a host (issue 24): OpenSSH's remote forwarding on the host's
//! multiplexed connection. `ssh -O forward -R 127.0.0.1:0:127.0.0.1:PORT` through the control socket asks the
//! host's sshd to listen on a port of *its own* loopback that it allocates (and ssh prints), and carries every
//! connection made to it back over the ssh connection to `127.0.0.1:PORT` here. A Maelstrom node's bridge on
//! the host so reaches squall's kv services (`lin-kv`, `seq-kv`, `lww-kv`, which live in the controller) at a
//! loopback address of its host.
//!
//! Why ssh's forwarding rather than a relay through the agent's channel: the issue allows nothing to listen
//! on a host but the agent's ssh channel and the node and proxy ports on the hosts file's addresses. A
//! forward's listener is sshd's, on the host's loopback only (sshd binds a remote forward to loopback unless
//! `GatewayPorts` says otherwise, and squall asks for 127.0.0.1), for the ssh login user; the bytes ride the
//! connection squall already authenticated; nothing of the agent's protocol changes, and the services see
//! each bridge as one TCP connection, exactly as locally. The price: the host's sshd must allow TCP
//! forwarding (`AllowTcpForwarding`, yes by default), which a host that refuses is told to check.
//!
//! A forward lives as long as the multiplexing master. A reconnect that made a new master (`SshHost::attach`)
//! makes every forward again, on the port it had when the host can still give it (the running bridges know
//! that one); `SshHost::close_master` cancels them first. `SshHost` (in `ssh`) holds a host's [`Forwards`]
//! and gives them its `ssh` command (`Mux`); this module knows nothing else of it.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Command;

/// How long one `ssh -O forward` or `-O cancel` may take.
const FORWARD_DEADLINE: Duration = Duration::from_secs(10);

/// One remote forward: the host's loopback port `remote` carried to this machine's loopback port `local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Forward {
    local: u16,
    /// The listening port the forward was asked with (0: one the host chose); a cancel must name the same.
    asked: u16,
    remote: u16,
}

/// The forwards of one host's ssh connection, shared by every clone of its `SshHost` (the fleet's and the
/// backend's), so a reconnect that makes them again is seen by all.
#[derive(Debug, Clone, Default)]
pub struct Forwards(Arc<Mutex<Vec<Forward>>>);

/// The forward specification `-R` takes: the host's loopback port `remote` to this machine's `local`.
fn spec(remote: u16, local: u16) -> String {
    format!("127.0.0.1:{remote}:127.0.0.1:{local}")
}

/// The port `ssh -O forward` printed for a forward whose port the host chose.
fn printed_port(stdout: &[u8]) -> Option<u16> {
    String::from_utf8_lossy(stdout)
        .lines()
        .find_map(|l| l.trim().parse::<u16>().ok())
        .filter(|p| *p != 0)
}

/// How to reach one host's multiplexing master: `ssh` with the host's options and `-O ...` arguments, and
/// the host's names for messages.
pub(super) struct Mux<'a> {
    /// `ssh` with squall's options and the host's, given the control arguments.
    pub ssh: &'a (dyn Fn(&[&str]) -> Command + Sync),
    /// The host's label.
    pub label: &'a str,
    /// Its ssh destination.
    pub dest: &'a str,
}

impl Forwards {
    /// Forwards TCP port `local` of this machine's loopback to a port the host allocates on its own loopback;
    /// returns the address a program on the host connects to (`127.0.0.1:PORT`, the host's loopback).
    /// Asking again for the same `local` answers the same address. `Err` names the host and what to check.
    pub(super) async fn forward_here(
        &self,
        mux: &Mux<'_>,
        local: u16,
    ) -> Result<SocketAddr, String> {
        if let Some(a) = self.forwarded(local) {
            return Ok(a);
        }
        let remote = request(mux, 0, local).await?;
        self.0.lock().unwrap().push(Forward {
            local,
            asked: 0,
            remote,
        });
        Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, remote)))
    }

    /// The host's address of the forward of `local`, if one was made.
    pub(super) fn forwarded(&self, local: u16) -> Option<SocketAddr> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|f| f.local == local)
            .map(|f| SocketAddr::from((Ipv4Addr::LOCALHOST, f.remote)))
    }

    /// Makes every forward again after a reconnect, on the port it had if the host can give it, else on a new
    /// one; one line per forward whose port changed (programs started before still dial the old one), or that
    /// could not be made again. With the old master still alive its forwards are still there and nothing
    /// changes.
    pub(super) async fn remake(&self, mux: &Mux<'_>) -> Vec<String> {
        let old: Vec<Forward> = self.0.lock().unwrap().clone();
        let mut said = Vec::new();
        for f in old {
            // The same port first: the bridges started before the reconnect dial it.
            let again = match request(mux, f.remote, f.local).await {
                Ok(_) => Ok((f.remote, f.remote)),
                // Taken (the old master's, still alive, holds it under the spec it was asked with, which then
                // answers the same port; or something else took it): ask as the first time.
                Err(_) => request(mux, f.asked, f.local).await.map(|p| (f.asked, p)),
            };
            let mut forwards = self.0.lock().unwrap();
            let Some(slot) = forwards.iter_mut().find(|x| x.local == f.local) else {
                continue;
            };
            match again {
                Ok((asked, remote)) => {
                    if remote != f.remote {
                        said.push(format!(
                            "host {}: the forward of this machine's port {} is now the host's port {remote} \
                             (was {}): nodes started before the reconnect cannot reach it until restarted",
                            mux.label, f.local, f.remote
                        ));
                    }
                    *slot = Forward {
                        local: f.local,
                        asked,
                        remote,
                    };
                }
                Err(e) => said.push(e),
            }
        }
        said
    }

    /// Cancels every forward (before the master closes; a master that is gone took them along).
    pub(super) async fn cancel(&self, mux: &Mux<'_>) {
        let all: Vec<Forward> = std::mem::take(&mut *self.0.lock().unwrap());
        for f in all {
            let mut c = (mux.ssh)(&["-O", "cancel", "-R", &spec(f.asked, f.local)]);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            let _ = tokio::time::timeout(FORWARD_DEADLINE, c.status()).await;
        }
    }
}

/// `ssh -O forward -R 127.0.0.1:REMOTE:127.0.0.1:LOCAL` through the control socket: the host's port (the one
/// it chose when `remote` is 0).
async fn request(mux: &Mux<'_>, remote: u16, local: u16) -> Result<u16, String> {
    let mut c = (mux.ssh)(&["-O", "forward", "-R", &spec(remote, local)]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = match tokio::time::timeout(FORWARD_DEADLINE, c.output()).await {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return Err(format!("cannot run ssh for host {}: {e}", mux.label)),
        Err(_) => {
            return Err(format!(
                "host {}: ssh did not forward a port within {FORWARD_DEADLINE:?}",
                mux.label
            ));
        }
    };
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let said: Vec<&str> = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        return Err(format!(
            "host {}: cannot forward a port of the host's loopback to this machine's port {local} over ssh \
             ({}): {}; the host's sshd must allow TCP forwarding (AllowTcpForwarding yes, the default)",
            mux.label,
            mux.dest,
            if said.is_empty() {
                "ssh said nothing".to_string()
            } else {
                said.join("; ")
            }
        ));
    }
    if remote != 0 {
        return Ok(remote);
    }
    printed_port(&out.stdout).ok_or_else(|| {
        format!(
            "host {}: ssh forwarded a port but did not say which (it printed {:?})",
            mux.label,
            String::from_utf8_lossy(&out.stdout).trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_ssh_prints_is_read_and_nothing_else_is_taken_for_one() {
        assert_eq!(printed_port(b"37149\n"), Some(37149));
        assert_eq!(printed_port(b"Allocated port 1\n40000\n"), Some(40000));
        assert_eq!(printed_port(b""), None);
        assert_eq!(printed_port(b"0\n"), None);
        assert_eq!(printed_port(b"no port\n"), None);
        assert_eq!(spec(0, 8080), "127.0.0.1:0:127.0.0.1:8080");
    }
}
