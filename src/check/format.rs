//! The history file formats: JSON Lines (read and written) and Jepsen's EDN (written).
//!
//! JSON Lines, one event per line:
//! `{"index": i, "type": "invoke"|"ok"|"fail"|"info", "f": "read"|"write"|"cas", "process": p, "time": ns,
//! "value": …}` with `value` `[key, null]` for a read's invocation, `[key, v]` (`v` null when absent) for its
//! completion, `[key, v]` for a write and `[key, [from, to]]` for a cas. Keys and values are integers; `time`
//! is nanoseconds since the session started. Blank lines are skipped.
//!
//! EDN, one map per line as Jepsen's `history.edn` holds them:
//! `{:index 0, :type :invoke, :f :cas, :process 3, :time 1200, :value [2 [4 5]]}`.

use std::fmt::Write as _;

use serde_json::Value;

use super::history::{OpEvent, OpF, OpType, OpValue};

/// A line of a history file that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Events read from a JSON Lines history, with the 1-based line number of each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The events, in file order.
    pub events: Vec<OpEvent>,
    /// `lines[i]` is the line `events[i]` came from.
    pub lines: Vec<usize>,
}

/// The longest line a history may hold. An operation event takes about 120 bytes; a longer line is not a
/// history (think `/dev/zero`), and stopping there keeps the reader's memory bounded.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Reads a JSON Lines history.
///
/// # Errors
/// The first line that is not JSON, lacks a field, or has a field of the wrong shape, named by its number.
pub fn parse_jsonl(text: &str) -> Result<Parsed, ParseError> {
    parse_jsonl_from(text.as_bytes())
}

/// Reads a JSON Lines history as a stream: one line at a time, each at most [`MAX_LINE_BYTES`], stopping at
/// the first bad one. Memory is the parsed events plus one line, whatever the input (an endless device
/// included).
///
/// # Errors
/// The first line that cannot be read, is too long, is not UTF-8, is not JSON, lacks a field, or has a field
/// of the wrong shape, named by its number.
pub fn parse_jsonl_from(mut input: impl std::io::BufRead) -> Result<Parsed, ParseError> {
    use std::io::{BufRead as _, Read as _};
    let mut out = Parsed::default();
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        let fail = |message: String| ParseError {
            line: number,
            message,
        };
        let read = (&mut input)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| fail(format!("cannot be read ({e})")))?;
        if read == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE_BYTES {
            return Err(fail(format!(
                "longer than {MAX_LINE_BYTES} bytes without a line break: not a history (an operation event \
                 is one short JSON object per line)"
            )));
        }
        let line = std::str::from_utf8(&buf).map_err(|e| {
            fail(format!(
                "is not UTF-8 text (invalid byte at column {}): not a history",
                e.valid_up_to() + 1
            ))
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let event = parse_line(line).map_err(fail)?;
        out.events.push(event);
        out.lines.push(number);
    }
    Ok(out)
}

fn int(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("{what} should be an integer, not {v}"))
}

fn uint(obj: &serde_json::Map<String, Value>, field: &str) -> Result<u64, String> {
    let v = obj
        .get(field)
        .ok_or_else(|| format!("missing \"{field}\""))?;
    v.as_u64()
        .ok_or_else(|| format!("\"{field}\" should be a non-negative integer, not {v}"))
}

fn parse_line(line: &str) -> Result<OpEvent, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    let obj = v
        .as_object()
        .ok_or("should be a JSON object like {\"index\": 0, \"type\": \"invoke\", ...}")?;
    let text = |field: &str| -> Result<&str, String> {
        let v = obj
            .get(field)
            .ok_or_else(|| format!("missing \"{field}\""))?;
        v.as_str()
            .ok_or_else(|| format!("\"{field}\" should be a string, not {v}"))
    };
    let kind_s = text("type")?;
    let kind = OpType::parse(kind_s).ok_or_else(|| {
        format!("\"type\" is {kind_s:?}; expected \"invoke\", \"ok\", \"fail\" or \"info\"")
    })?;
    let f_s = text("f")?;
    let f = OpF::parse(f_s)
        .ok_or_else(|| format!("\"f\" is {f_s:?}; expected \"read\", \"write\" or \"cas\""))?;
    let index = uint(obj, "index")?;
    let process = uint(obj, "process")?;
    let time = uint(obj, "time")?;
    let value = obj.get("value").ok_or("missing \"value\"")?;
    let pair = value
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or_else(|| format!("\"value\" should be [key, value], not {value}"))?;
    let key = int(&pair[0], "the key")?;
    let v = &pair[1];
    let value = match f {
        OpF::Read if v.is_null() || kind != OpType::Ok => OpValue::Read(None),
        OpF::Read => OpValue::Read(Some(int(v, "a read's value")?)),
        OpF::Write => OpValue::Write(int(v, "a write's value")?),
        OpF::Cas => {
            let ft = v.as_array().filter(|a| a.len() == 2).ok_or_else(|| {
                format!("a cas's value should be [key, [from, to]], not [{key}, {v}]")
            })?;
            OpValue::Cas(int(&ft[0], "a cas's from")?, int(&ft[1], "a cas's to")?)
        }
    };
    Ok(OpEvent {
        index,
        kind,
        process,
        time,
        key,
        value,
    })
}

fn json_value(e: &OpEvent) -> String {
    match e.value {
        OpValue::Read(None) => format!("[{}, null]", e.key),
        OpValue::Read(Some(v)) | OpValue::Write(v) => format!("[{}, {v}]", e.key),
        OpValue::Cas(a, b) => format!("[{}, [{a}, {b}]]", e.key),
    }
}

/// One event as a JSON Lines line (no newline).
pub fn jsonl_line(e: &OpEvent) -> String {
    format!(
        "{{\"index\": {}, \"type\": \"{}\", \"f\": \"{}\", \"process\": {}, \"time\": {}, \"value\": {}}}",
        e.index,
        e.kind.as_str(),
        e.f().as_str(),
        e.process,
        e.time,
        json_value(e)
    )
}

/// A whole history as JSON Lines, one line per event, each ending in a newline.
pub fn to_jsonl(events: &[OpEvent]) -> String {
    let mut s = String::with_capacity(events.len() * 96);
    for e in events {
        s.push_str(&jsonl_line(e));
        s.push('\n');
    }
    s
}

/// One event as an EDN map (no newline).
pub fn edn_line(e: &OpEvent) -> String {
    let value = match e.value {
        OpValue::Read(None) => format!("[{} nil]", e.key),
        OpValue::Read(Some(v)) | OpValue::Write(v) => format!("[{} {v}]", e.key),
        OpValue::Cas(a, b) => format!("[{} [{a} {b}]]", e.key),
    };
    let mut s = String::with_capacity(96);
    let _ = write!(
        s,
        "{{:index {}, :type :{}, :f :{}, :process {}, :time {}, :value {}}}",
        e.index,
        e.kind.as_str(),
        e.f().as_str(),
        e.process,
        e.time,
        value
    );
    s
}

/// A whole history as EDN, one map per line, as Jepsen stores `history.edn`.
pub fn to_edn(events: &[OpEvent]) -> String {
    let mut s = String::with_capacity(events.len() * 96);
    for e in events {
        s.push_str(&edn_line(e));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, kind: OpType, process: u64, time: u64, value: OpValue) -> OpEvent {
        OpEvent {
            index,
            kind,
            process,
            time,
            key: 3,
            value,
        }
    }

    #[test]
    fn every_shape_round_trips_through_jsonl() {
        let events = vec![
            ev(0, OpType::Invoke, 0, 10, OpValue::Read(None)),
            ev(1, OpType::Ok, 0, 20, OpValue::Read(Some(-4))),
            ev(2, OpType::Invoke, 1, 30, OpValue::Write(7)),
            ev(3, OpType::Info, 1, 40, OpValue::Write(7)),
            ev(4, OpType::Invoke, 2, 50, OpValue::Cas(7, 8)),
            ev(5, OpType::Fail, 2, 60, OpValue::Cas(7, 8)),
            ev(6, OpType::Invoke, 0, 70, OpValue::Read(None)),
            ev(7, OpType::Ok, 0, 80, OpValue::Read(None)),
        ];
        let text = to_jsonl(&events);
        assert_eq!(
            text.lines().next().unwrap(),
            r#"{"index": 0, "type": "invoke", "f": "read", "process": 0, "time": 10, "value": [3, null]}"#
        );
        assert!(text.contains(r#""f": "cas", "process": 2, "time": 50, "value": [3, [7, 8]]}"#));
        assert_eq!(parse_jsonl(&text).unwrap().events, events);
    }

    #[test]
    fn edn_is_jepsens_shape() {
        let e = ev(4, OpType::Invoke, 2, 50, OpValue::Cas(7, 8));
        assert_eq!(
            edn_line(&e),
            "{:index 4, :type :invoke, :f :cas, :process 2, :time 50, :value [3 [7 8]]}"
        );
        let r = ev(0, OpType::Invoke, 0, 10, OpValue::Read(None));
        assert!(edn_line(&r).ends_with(":value [3 nil]}"));
    }

    #[test]
    fn a_bad_line_is_named_by_its_number_and_says_what_is_wrong() {
        let good = r#"{"index": 0, "type": "invoke", "f": "read", "process": 0, "time": 1, "value": [1, null]}"#;
        for (bad, says) in [
            ("{not json", "not JSON"),
            (
                r#"{"index": 1, "type": "ok", "f": "read", "process": 0, "value": [1, 2]}"#,
                "missing \"time\"",
            ),
            (
                r#"{"index": 1, "type": "done", "f": "read", "process": 0, "time": 2, "value": [1, 2]}"#,
                "\"type\" is \"done\"",
            ),
            (
                r#"{"index": 1, "type": "ok", "f": "incr", "process": 0, "time": 2, "value": [1, 2]}"#,
                "\"f\" is \"incr\"",
            ),
            (
                r#"{"index": 1, "type": "ok", "f": "write", "process": 0, "time": 2, "value": [1, "x"]}"#,
                "a write's value should be an integer",
            ),
            (
                r#"{"index": 1, "type": "ok", "f": "cas", "process": 0, "time": 2, "value": [1, 2]}"#,
                "a cas's value should be",
            ),
            (
                r#"{"index": 1, "type": "ok", "f": "read", "process": -1, "time": 2, "value": [1, 2]}"#,
                "\"process\" should be a non-negative integer",
            ),
            (r#"[1, 2]"#, "should be a JSON object"),
        ] {
            let text = format!("{good}\n\n{bad}\n");
            let err = parse_jsonl(&text).unwrap_err();
            assert_eq!(err.line, 3, "{bad}");
            assert!(err.message.contains(says), "{bad}: {}", err.message);
        }
    }
}
