//! The signals that end a session cleanly.

use std::process::ExitCode;

/// SIGTERM and SIGHUP (the terminal closed), so both loops stop the cluster cleanly on either, finishing the
/// event log, instead of dying with it half written.
pub struct StopSignals {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Listens for both; the exit code (1) after the message when that is refused.
    pub fn new() -> Result<StopSignals, ExitCode> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind, name: &str| {
            signal(kind)
                .map_err(|e| crate::setup::fail(1, format!("cannot listen for {name}: {e}")))
        };
        Ok(StopSignals {
            term: listen(SignalKind::terminate(), "SIGTERM")?,
            hup: listen(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// Waits for either; says which ("terminated", "hung up").
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "terminated",
            _ = self.hup.recv() => "hung up",
        }
    }
}
