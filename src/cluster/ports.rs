//! The ports squall picks for a node (its kind's `{port.NAME}`): free on the address the node binds them on,
//! picked on the machine that runs it (here, or by its host's agent: [`super::backend::Procs::pick_ports`]).

use std::collections::BTreeMap;

use anyhow::anyhow;

use crate::kind::{Kind, Ready};

/// A free port on 127.0.0.1 for each of the kind's port names, when squall picks them (a kind whose node
/// reports its own ports through an address file gets none). The port is free when picked; the node binds it
/// a moment later. A node on another host gets its ports from its host's agent instead
/// ([`super::backend::Procs::pick_ports`]).
pub(crate) fn pick_ports(kind: &Kind) -> anyhow::Result<BTreeMap<String, u16>> {
    if !squall_picks_ports(kind) {
        return Ok(BTreeMap::new());
    }
    free_ports(std::net::IpAddr::from([127, 0, 0, 1]), &kind.ports).map_err(|e| anyhow!(e))
}

/// Whether squall picks the kind's ports (`{port.NAME}`): every kind but one whose node reports its own.
pub(crate) fn squall_picks_ports(kind: &Kind) -> bool {
    !matches!(kind.ready, Ready::AddrFile(_))
}

/// A free port on `ip` for each of `names`, all different: each listener (port 0, chosen by the OS) is held
/// until all are picked. `Err` names the port and the address that could not be bound. `squall agent` picks
/// its nodes' ports here too, on its host's address.
pub(crate) fn free_ports(
    ip: std::net::IpAddr,
    names: &[String],
) -> Result<BTreeMap<String, u16>, String> {
    let mut held = Vec::new();
    let mut ports = BTreeMap::new();
    for name in names {
        let picked = std::net::TcpListener::bind((ip, 0))
            .and_then(|l| Ok((l.local_addr()?.port(), l)))
            .map_err(|e| format!("cannot pick a port for `{name}` on {ip}: {e}"))?;
        ports.insert(name.clone(), picked.0);
        held.push(picked.1);
    }
    Ok(ports)
}
