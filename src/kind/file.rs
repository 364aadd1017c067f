//! The kind file as it is written: serde shapes that refuse unknown fields and keep the byte span of every
//! value a later check may need to point at. [`super::Kind::parse`] turns this into a checked [`super::Kind`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole kind file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KindFile {
    pub name: Spanned<String>,
    pub description: String,
    pub program: Spanned<String>,
    #[serde(default)]
    pub args: Vec<Spanned<String>>,
    pub missing: Option<String>,
    #[serde(default)]
    pub ports: PortsFile,
    pub launch: LaunchFile,
    pub peers: PeersFile,
    pub status: ProtocolFile,
    pub client: ProtocolFile,
    pub membership: Option<ProtocolFile>,
    #[serde(default)]
    pub controls: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    pub options: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    pub limits: BTreeMap<Spanned<String>, String>,
    #[serde(default)]
    pub disk: DiskFile,
}

/// `[disk]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DiskFile {
    #[serde(default)]
    pub not_data: Vec<Spanned<String>>,
}

/// `[ports]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PortsFile {
    #[serde(default)]
    pub names: Vec<Spanned<String>>,
}

/// `[launch]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LaunchFile {
    pub args: Vec<Spanned<String>>,
    pub join_args: Option<Vec<Spanned<String>>>,
    pub ready: Spanned<ReadyFile>,
}

/// `[launch] ready`: `"status"`, `{ tcp = "PORT" }` or `{ addr_file = "PATH" }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum ReadyFile {
    Word(String),
    Table(ReadyTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReadyTable {
    pub tcp: Option<String>,
    pub addr_file: Option<String>,
}

/// `[peers]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PeersFile {
    pub model: Spanned<String>,
    pub port: Spanned<String>,
    pub entry: Spanned<String>,
    #[serde(default = "comma")]
    pub separator: String,
    #[serde(default)]
    pub include_self: bool,
    pub framing: Spanned<String>,
    #[serde(default = "no_classifier")]
    pub classifier: Spanned<String>,
    pub sender: Option<Spanned<String>>,
    /// The `json-tag` classifier's table (`[peers.json-tag]`), checked by [`super::json_tag::JsonTag`].
    #[serde(rename = "json-tag")]
    pub json_tag: Option<Spanned<toml::Value>>,
}

fn comma() -> String {
    ",".to_string()
}

fn no_classifier() -> Spanned<String> {
    Spanned::new(0..0, "none".to_string())
}

/// `[status]`, `[client]`, `[membership]`: a built-in driver by name, and the port it reaches the node on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProtocolFile {
    pub protocol: Spanned<String>,
    pub port: Option<Spanned<String>>,
    /// The `http-json` driver's table (`[status.http]`, `[client.http]`), checked by that driver.
    pub http: Option<Spanned<toml::Value>>,
}
