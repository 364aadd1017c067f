//! The controller's side of an agent connection: send a [`Request`], await its reply; events arrive on a
//! channel. Generic over the byte stream, so it drives an agent through ssh or (in tests) a local child.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::protocol::{AgentEvent, Answer, Message, Op, Request};

type Pending = Arc<Mutex<Option<HashMap<u64, oneshot::Sender<Result<Answer, String>>>>>>;

/// A connection to one agent. Cheap to clone; requests may be sent from many tasks at once.
#[derive(Clone)]
pub struct AgentClient {
    label: String,
    next: Arc<AtomicU64>,
    pending: Pending,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    /// Becomes `true` when the agent's output ends.
    closed: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl AgentClient {
    /// Speaks to an agent whose standard input is `input` and standard output `output`; `label` names the
    /// host in errors. Returns the client and the agent's events, which end when the connection does.
    pub fn new(
        label: &str,
        input: impl AsyncWrite + Unpin + Send + 'static,
        output: impl AsyncRead + Unpin + Send + 'static,
    ) -> (AgentClient, mpsc::UnboundedReceiver<AgentEvent>) {
        let pending: Pending = Arc::new(Mutex::new(Some(HashMap::new())));
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (events_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut input = input;
            while let Some(line) = rx.recv().await {
                if input.write_all(&line).await.is_err() || input.flush().await.is_err() {
                    return;
                }
            }
        });
        let p = pending.clone();
        let (closed_tx, closed) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut lines = BufReader::new(output).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Message>(&line) {
                    Ok(Message::Reply { id, ok, error }) => {
                        let result = match (ok, error) {
                            (_, Some(e)) => Err(e),
                            (Some(a), None) => Ok(a),
                            (None, None) => Err("the agent answered neither ok nor error".into()),
                        };
                        let waiter = p.lock().unwrap().as_mut().and_then(|m| m.remove(&id));
                        if let Some(w) = waiter {
                            let _ = w.send(result);
                        } else if let Err(e) = result {
                            tracing::warn!(error = %e, "the agent refused a line");
                        }
                    }
                    Ok(Message::Event(e)) => {
                        let _ = events_tx.send(e);
                    }
                    Err(e) => tracing::warn!(error = %e, line = %line, "not an agent message"),
                }
            }
            // The connection is gone: every waiter hears so, and later requests fail at once.
            p.lock().unwrap().take();
            let _ = closed_tx.send(true);
        });
        (
            AgentClient {
                label: label.to_string(),
                next: Arc::new(AtomicU64::new(1)),
                pending,
                tx,
                closed,
            },
            events,
        )
    }

    /// The host's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Returns once the connection is gone (the agent's output ended: its ssh exited or the agent did).
    pub async fn closed(&self) {
        let mut c = self.closed.clone();
        let _ = c.wait_for(|gone| *gone).await;
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Sends `op` and waits up to `deadline` for its answer. `Err` is for a person: the agent's refusal, or
    /// that the connection is gone or the deadline passed (then the request may or may not have been done).
    pub async fn call(&self, op: Op, deadline: Duration) -> Result<Answer, String> {
        self.queue(op, deadline).await
    }

    /// Sends `op` now, before returning, and gives back the wait for its answer (as [`AgentClient::call`]):
    /// requests queued one after another reach the agent in that order even when nobody awaits them yet, so a
    /// caller that cannot wait (a fault set from code that does not await) still keeps the order.
    pub fn queue(
        &self,
        op: Op,
        deadline: Duration,
    ) -> impl std::future::Future<Output = Result<Answer, String>> + Send + 'static {
        let label = self.label.clone();
        let pending = self.pending.clone();
        let sent = self.send_now(op);
        async move {
            let (id, rx) = sent?;
            match tokio::time::timeout(deadline, rx).await {
                Ok(Ok(r)) => r.map_err(|e| format!("host {label}: {e}")),
                Ok(Err(_)) => Err(format!(
                    "host {label}: the agent connection closed before it answered"
                )),
                Err(_) => {
                    if let Some(m) = pending.lock().unwrap().as_mut() {
                        m.remove(&id);
                    }
                    Err(format!(
                        "host {label}: no answer from the agent within {deadline:?}"
                    ))
                }
            }
        }
    }

    /// Writes `op` to the agent with a fresh id and registers the wait for its answer.
    #[allow(clippy::type_complexity)]
    fn send_now(&self, op: Op) -> Result<(u64, oneshot::Receiver<Result<Answer, String>>), String> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().unwrap().as_mut() {
            Some(m) => {
                m.insert(id, tx);
            }
            None => {
                return Err(format!(
                    "host {}: the agent connection is closed",
                    self.label
                ));
            }
        }
        let mut line = serde_json::to_vec(&Request { id, op }).expect("requests serialise");
        line.push(b'\n');
        if self.tx.send(line).is_err() {
            return Err(format!(
                "host {}: the agent connection is closed",
                self.label
            ));
        }
        Ok((id, rx))
    }
}
