//! Framing shared by every tarpc connection squall makes: length-delimited frames with an explicit limit,
//! bincode inside, TCP_NODELAY on, and the API port's one-byte service selector.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tarpc::client;
use tarpc::tokio_serde::formats::Bincode;
use tarpc::tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::rpc::{self, ControlServiceClient, MAX_FRAME_BYTES, PeerServiceClient};

/// A tarpc transport over TCP with squall's framing.
pub type TcpTransport<Item, SinkItem> =
    tarpc::serde_transport::Transport<TcpStream, Item, SinkItem, Bincode<Item, SinkItem>>;

/// Wraps an open stream in squall's framing (frame limit set explicitly).
pub fn framed<Item, SinkItem>(stream: TcpStream) -> TcpTransport<Item, SinkItem>
where
    Item: for<'de> Deserialize<'de>,
    SinkItem: Serialize,
{
    let _ = stream.set_nodelay(true);
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_codec();
    tarpc::serde_transport::new(Framed::new(stream, codec), Bincode::default())
}

/// A tarpc context whose deadline is `timeout` from now (tarpc's 10 s default is never right here).
pub fn deadline(timeout: Duration) -> tarpc::context::Context {
    let mut ctx = tarpc::context::current();
    ctx.deadline = Instant::now() + timeout;
    ctx
}

/// Opens a TCP connection within `timeout`.
pub async fn dial(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connecting to {addr} timed out after {timeout:?}"),
        )),
    }
}

/// Connects to a node's peer port.
pub async fn connect_peer(
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<PeerServiceClient> {
    let stream = dial(addr, timeout).await?;
    Ok(PeerServiceClient::new(client::Config::default(), framed(stream)).spawn())
}

/// Opens a connection to a node's API port and selects a service with its first byte.
async fn dial_api(addr: SocketAddr, timeout: Duration, service: u8) -> std::io::Result<TcpStream> {
    let mut stream = dial(addr, timeout).await?;
    stream.write_all(&[service]).await?;
    Ok(stream)
}

/// Connects to a node's API port and selects the client (KV) service.
pub async fn connect_client(
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<rpc::ClientServiceClient> {
    let stream = dial_api(addr, timeout, rpc::API_CLIENT).await?;
    Ok(rpc::ClientServiceClient::new(client::Config::default(), framed(stream)).spawn())
}

/// Connects to a node's API port and selects the control service.
pub async fn connect_control(
    addr: SocketAddr,
    timeout: Duration,
) -> std::io::Result<ControlServiceClient> {
    let stream = dial_api(addr, timeout, rpc::API_CONTROL).await?;
    Ok(ControlServiceClient::new(client::Config::default(), framed(stream)).spawn())
}
