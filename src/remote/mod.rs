//! Nodes on other machines (issue 24): which host runs which node ([`hosts`]), the agent's wire protocol
//! ([`protocol`]), the controller's side of an agent connection ([`client`]) and the SSH transport that starts
//! agents ([`ssh`]), and keeping them connected ([`fleet`]: pings, unreachable hosts, reconnects). The agent itself (`squall agent`) is [`crate::agent`].

pub mod client;
pub mod connect;
pub mod fleet;
pub mod forward;
pub mod hosts;
pub mod protocol;
pub mod ssh;

use std::sync::OnceLock;

/// This build's identity, `squall VERSION sha1:HEX` (the SHA-1 of the running executable): two binaries with
/// the same version but different code differ here, so the controller copies itself to a host whose binary is
/// not this very build. `Err` when the executable cannot be read.
pub fn build_id() -> Result<String, String> {
    static ID: OnceLock<Result<String, String>> = OnceLock::new();
    ID.get_or_init(|| {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot find squall's own executable: {e}"))?;
        build_id_of(&exe)
    })
    .clone()
}

/// The identity [`build_id`] gives the squall executable at `exe` when it runs (its version is this
/// crate's: only a squall of this version is ever copied to a host).
pub fn build_id_of(exe: &std::path::Path) -> Result<String, String> {
    use sha1::{Digest, Sha1};
    use std::io::Read;
    let mut f =
        std::fs::File::open(exe).map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("squall {} sha1:{hex}", env!("CARGO_PKG_VERSION")))
}
