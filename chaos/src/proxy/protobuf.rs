//! The few pieces of the protobuf wire format a framing or a classifier needs: varints, and walking the
//! top-level fields of a message without a schema.
//!
//! Wire format from the protobuf encoding guide (developers.google.com/protocol-buffers/docs/encoding): each field
//! is a key varint `number << 3 | wire type` followed by a varint (type 0), 8 bytes (type 1), a length-delimited
//! run (type 2) or 4 bytes (type 5). No generated code: callers name the field numbers they read.

/// A field's value as it sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// Wire type 0: an integer, bool or enum.
    Varint(u64),
    /// Wire type 1: 8 little-endian bytes.
    Fixed64(u64),
    /// Wire type 2: bytes, a string or an embedded message.
    Bytes(&'a [u8]),
    /// Wire type 5: 4 little-endian bytes.
    Fixed32(u32),
}

/// Reads a varint at the front of `buf`: the value and how many bytes it took, or `None` when `buf` ends inside
/// it or it runs past 10 bytes.
pub fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Appends `v` as a varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends field `number` as a varint field.
pub fn put_uint(out: &mut Vec<u8>, number: u32, v: u64) {
    put_varint(out, u64::from(number) << 3);
    put_varint(out, v);
}

/// Appends field `number` as a length-delimited field holding `bytes`.
pub fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Iterates over the top-level fields of a message as `(number, value)`. Stops at the first field that is cut
/// short or malformed (a prefix of a message yields its whole fields, then ends); [`Fields::truncated`] then
/// says so.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
    truncated: bool,
}

impl<'a> Fields<'a> {
    /// The fields of `msg`.
    pub fn new(msg: &'a [u8]) -> Fields<'a> {
        Fields {
            rest: msg,
            truncated: false,
        }
    }

    /// Whether iteration stopped before the end of the bytes (cut short, or not protobuf).
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u32, Value<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.truncated {
            return None;
        }
        let parsed = (|| {
            let (key, k) = read_varint(self.rest)?;
            let body = &self.rest[k..];
            let number = u32::try_from(key >> 3).ok()?;
            let (value, used) = match key & 7 {
                0 => {
                    let (v, n) = read_varint(body)?;
                    (Value::Varint(v), n)
                }
                1 => (
                    Value::Fixed64(u64::from_le_bytes(body.get(..8)?.try_into().ok()?)),
                    8,
                ),
                2 => {
                    let (len, n) = read_varint(body)?;
                    let end = n.checked_add(usize::try_from(len).ok()?)?;
                    (Value::Bytes(body.get(n..end)?), end)
                }
                5 => (
                    Value::Fixed32(u32::from_le_bytes(body.get(..4)?.try_into().ok()?)),
                    4,
                ),
                _ => return None,
            };
            Some((number, value, k + used))
        })();
        match parsed {
            Some((number, value, used)) => {
                self.rest = &self.rest[used..];
                Some((number, value))
            }
            None => {
                self.truncated = true;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_stop_short_inside() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(read_varint(&b), Some((v, b.len())), "value {v}");
            assert_eq!(read_varint(&b[..b.len() - 1]), None, "value {v} cut short");
        }
    }

    #[test]
    fn fields_walk_a_message_and_stop_at_a_cut() {
        let mut m = Vec::new();
        put_uint(&mut m, 1, 5);
        put_bytes(&mut m, 7, b"entry");
        put_uint(&mut m, 8, 300);
        let all: Vec<_> = Fields::new(&m).collect();
        assert_eq!(
            all,
            vec![
                (1, Value::Varint(5)),
                (7, Value::Bytes(b"entry")),
                (8, Value::Varint(300))
            ]
        );
        let mut cut = Fields::new(&m[..m.len() - 1]);
        assert_eq!(cut.by_ref().count(), 2);
        assert!(cut.truncated());
    }
}
