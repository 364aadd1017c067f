//! The `json-tag` classifier: message kinds of a node whose peer frames are JSON objects, read from a tag in
//! each frame and mapped onto squall's message kinds by the kind file (`[peers.json-tag]`), so `only KIND`,
//! `hold` and the per-kind link counters work for a node squall knows nothing else about.
//!
//! The tag is the name of the object's first key (serde's default, externally tagged enums:
//! `{"Vote":{…}}`), or with `field = "NAME"` the string value of a top-level field (internally tagged:
//! `{"type":"vote",…}`). Frames from the side that opened the connection are looked up in `requests`, the
//! answers in `replies`; a tag in neither has no kind (counted, never matched by `only`). Only the first
//! [`squall_chaos::proxy::classify::PREFIX`] bytes of a frame are read, so a field must come early.

use std::collections::BTreeMap;

use squall_chaos::{Classifier, Flow};

use crate::command::fault::MESSAGE_KINDS;

/// `[peers.json-tag]`, checked: where the tag is and the message kind (an index into [`MESSAGE_KINDS`]) of
/// each tag, per direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonTag {
    /// The top-level field holding the tag; `None`: the name of the object's first key.
    pub field: Option<String>,
    /// Tags of frames from the side that opened the connection.
    pub requests: BTreeMap<String, u8>,
    /// Tags of the answers.
    pub replies: BTreeMap<String, u8>,
}

impl JsonTag {
    /// Checks the table as the kind file writes it. `Err` gives the field inside the table and what is wrong.
    pub fn from_toml(v: toml::Value) -> Result<JsonTag, (String, String)> {
        let toml::Value::Table(t) = v else {
            return Err((String::new(), "must be a table".into()));
        };
        let mut out = JsonTag::default();
        for (k, v) in t {
            match k.as_str() {
                "field" => {
                    let name = v.as_str().filter(|s| !s.is_empty()).ok_or((
                        "field".to_string(),
                        "must be the name of a top-level field (a string)".to_string(),
                    ))?;
                    out.field = Some(name.to_string());
                }
                "requests" | "replies" => {
                    let toml::Value::Table(map) = v else {
                        return Err((k, "must be a table of TAG = \"KIND\"".into()));
                    };
                    for (tag, kind) in map {
                        let at = format!("{k}.{tag}");
                        let kind = kind.as_str().ok_or((
                            at.clone(),
                            "must name one of squall's message kinds (a string)".to_string(),
                        ))?;
                        let index = MESSAGE_KINDS.iter().position(|m| *m == kind).ok_or((
                            at.clone(),
                            format!(
                                "unknown message kind `{kind}`; known: {}",
                                MESSAGE_KINDS.join(", ")
                            ),
                        ))?;
                        let side = if k == "requests" {
                            &mut out.requests
                        } else {
                            &mut out.replies
                        };
                        side.insert(tag, index as u8);
                    }
                }
                other => {
                    return Err((
                        other.to_string(),
                        "unknown field; known: field, requests, replies".into(),
                    ));
                }
            }
        }
        if out.requests.is_empty() && out.replies.is_empty() {
            return Err((
                "requests".into(),
                "map at least one tag to a message kind (requests = { Vote = \"vote\" })".into(),
            ));
        }
        Ok(out)
    }

    /// The tag of a frame beginning with `prefix`, if it can be read there.
    pub fn tag<'a>(&self, prefix: &'a [u8]) -> Option<&'a str> {
        let mut at = skip_ws(prefix, 0);
        if prefix.get(at) != Some(&b'{') {
            return None;
        }
        at = skip_ws(prefix, at + 1);
        let Some(field) = &self.field else {
            return string_at(prefix, at).map(|(s, _)| s);
        };
        // Walk the top-level keys: a key, a colon, a value (skipped whole), a comma.
        loop {
            let (key, end) = string_at(prefix, at)?;
            at = skip_ws(prefix, end);
            if prefix.get(at) != Some(&b':') {
                return None;
            }
            at = skip_ws(prefix, at + 1);
            if key == field {
                return string_at(prefix, at).map(|(s, _)| s);
            }
            at = skip_value(prefix, at)?;
            at = skip_ws(prefix, at);
            if prefix.get(at) != Some(&b',') {
                return None;
            }
            at = skip_ws(prefix, at + 1);
        }
    }
}

fn skip_ws(b: &[u8], mut at: usize) -> usize {
    while b.get(at).is_some_and(|c| c.is_ascii_whitespace()) {
        at += 1;
    }
    at
}

/// A JSON string without escapes starting at `at`: its text and the index after its closing quote. A tag
/// with escapes is not one a kind file can name, so it is not read.
fn string_at(b: &[u8], at: usize) -> Option<(&str, usize)> {
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let len = b[at + 1..].iter().position(|&c| c == b'"' || c == b'\\')?;
    if b[at + 1 + len] != b'"' {
        return None;
    }
    let s = std::str::from_utf8(&b[at + 1..at + 1 + len]).ok()?;
    Some((s, at + 2 + len))
}

/// The index after the JSON value starting at `at`, if it ends within `b`.
fn skip_value(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at)? {
        b'"' => {
            let mut i = at + 1;
            while i < b.len() {
                match b[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(i + 1),
                    _ => i += 1,
                }
            }
            None
        }
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = skip_value(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let end = b[at..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())?;
            Some(at + end)
        }
    }
}

/// The classifier a kind file's `[peers.json-tag]` describes.
#[derive(Clone, Debug)]
pub struct JsonTagClassifier(pub std::sync::Arc<JsonTag>);

impl Classifier for JsonTagClassifier {
    fn labels(&self) -> &[&'static str] {
        &MESSAGE_KINDS
    }

    fn classify(&self, flow: Flow, prefix: &[u8]) -> Option<u8> {
        let tag = self.0.tag(prefix)?;
        match flow {
            Flow::Request => self.0.requests.get(tag).copied(),
            Flow::Reply => self.0.replies.get(tag).copied(),
        }
    }

    fn describe(&self, flow: Flow, payload: &[u8]) -> String {
        let kind = self
            .classify(flow, payload)
            .and_then(|i| MESSAGE_KINDS.get(usize::from(i)));
        match (self.0.tag(payload), kind) {
            (Some(tag), Some(kind)) => format!("{kind} ({tag}, {} bytes)", payload.len()),
            (Some(tag), None) => format!("{tag} ({} bytes)", payload.len()),
            (None, _) => format!("{} bytes, no tag", payload.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<JsonTag, (String, String)> {
        JsonTag::from_toml(toml::from_str::<toml::Value>(text).unwrap())
    }

    fn kind(c: &JsonTagClassifier, flow: Flow, frame: &str) -> Option<&'static str> {
        c.classify(flow, frame.as_bytes())
            .map(|i| MESSAGE_KINDS[usize::from(i)])
    }

    #[test]
    fn the_first_key_names_an_externally_tagged_message() {
        let c = JsonTagClassifier(std::sync::Arc::new(
            table(
                "requests = { Vote = \"vote\", Append = \"append\" }\n\
                 replies = { Vote = \"vote-reply\", Append = \"append-reply\" }",
            )
            .unwrap(),
        ));
        assert_eq!(
            kind(
                &c,
                Flow::Request,
                r#"{"Vote":{"vote":{"leader_id":{"term":3}}}}"#
            ),
            Some("vote")
        );
        assert_eq!(
            kind(&c, Flow::Reply, r#" { "Append" : {"success":true}}"#),
            Some("append-reply")
        );
        assert_eq!(kind(&c, Flow::Request, r#"{"Snapshot":{}}"#), None);
        assert_eq!(kind(&c, Flow::Request, "not json"), None);
        assert_eq!(kind(&c, Flow::Request, r#"{"Vo"#), None, "cut short");
        assert_eq!(
            c.describe(Flow::Request, br#"{"Vote":{}}"#),
            "vote (Vote, 11 bytes)"
        );
    }

    #[test]
    fn a_field_names_an_internally_tagged_message() {
        let c = JsonTagClassifier(std::sync::Arc::new(
            table("field = \"type\"\nrequests = { hb = \"heartbeat\" }").unwrap(),
        ));
        assert_eq!(
            kind(
                &c,
                Flow::Request,
                r#"{"term":3,"from":{"a":[1,"}"]},"type":"hb"}"#
            ),
            Some("heartbeat")
        );
        assert_eq!(kind(&c, Flow::Request, r#"{"type":"other"}"#), None);
        assert_eq!(kind(&c, Flow::Request, r#"{"term":3}"#), None);
    }

    #[test]
    fn mistakes_in_the_table_name_their_field() {
        assert_eq!(
            table("requests = { Vote = \"votes\" }").unwrap_err().0,
            "requests.Vote"
        );
        assert_eq!(table("tag = 1").unwrap_err().0, "tag");
        assert_eq!(table("field = \"type\"").unwrap_err().0, "requests");
    }
}
