use super::*;

/// A raftpb.Message with the fields the framer reads.
fn message(typ: u64, term: u64, index: u64, entries: &[(u64, u64)], commit: u64) -> Vec<u8> {
    let mut pb = Vec::new();
    protobuf::put_uint(&mut pb, 1, typ);
    protobuf::put_uint(&mut pb, 2, 2);
    protobuf::put_uint(&mut pb, 3, 1);
    protobuf::put_uint(&mut pb, 4, term);
    protobuf::put_uint(&mut pb, 5, term);
    protobuf::put_uint(&mut pb, 6, index);
    for &(t, i) in entries {
        protobuf::put_bytes(&mut pb, 7, &entry(t, i));
    }
    protobuf::put_uint(&mut pb, 8, commit);
    pb
}

fn entry(term: u64, index: u64) -> Vec<u8> {
    let mut e = Vec::new();
    protobuf::put_uint(&mut e, 1, 0);
    protobuf::put_uint(&mut e, 2, term);
    protobuf::put_uint(&mut e, 3, index);
    protobuf::put_bytes(&mut e, 4, b"put k v");
    e
}

/// `body` cut into chunks of `size` bytes, then the last chunk.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Feeds `stream` in pieces of `piece` bytes; returns every unit.
fn feed(framer: &mut RaftHttp, conn: &ConnState, stream: &[u8], piece: usize) -> Vec<Unit> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for p in stream.chunks(piece) {
        buf.extend_from_slice(p);
        framer.decode(conn, &mut buf, &mut out);
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    out
}

/// The body a chunked byte stream carries.
fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let Ok(httparse::Status::Complete((used, size))) = httparse::parse_chunk_size(s) else {
            panic!("bad chunk at {:?}", &s[..s.len().min(20)]);
        };
        s = &s[used..];
        if size == 0 {
            assert_eq!(s, b"\r\n", "the stream ends after the last chunk");
            return body;
        }
        body.extend_from_slice(&s[..size as usize]);
        assert_eq!(&s[size as usize..size as usize + 2], b"\r\n");
        s = &s[size as usize + 2..];
    }
}

fn messages(units: &[Unit]) -> Vec<&Unit> {
    units
        .iter()
        .filter(|u| matches!(u.kind, UnitKind::Message { .. }))
        .collect()
}

const STREAM_GET: &str = "GET /raft/stream/message/2 HTTP/1.1\r\nHost: x\r\nX-Server-From: 2\r\n\
                          X-Raft-To: 1\r\n\r\n";
const MSGAPP_GET: &str = "GET /raft/stream/msgapp/2 HTTP/1.1\r\nHost: x\r\nX-Server-From: 2\r\n\
                          X-Raft-To: a\r\n\r\n";
const STREAM_OK: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";

#[test]
fn a_pipeline_post_is_one_whole_request_message_across_any_split() {
    let body = message(MSG_APP, 3, 7, &[(3, 8)], 7);
    let mut req = format!(
        "POST /raft HTTP/1.1\r\nHost: x\r\nX-Server-From: 1f\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    for piece in [1, 2, 7, 50, req.len()] {
        let conn = ConnState::default();
        let units = feed(&mut RaftHttp::new(Flow::Request), &conn, &req, piece);
        assert_eq!(units.len(), 1, "piece {piece}");
        assert_eq!(
            units[0].kind,
            UnitKind::Message {
                whole_request: true
            }
        );
        assert_eq!(
            units[0].wire.as_ref(),
            req.as_slice(),
            "forwarded as it came"
        );
        assert_eq!(units[0].payload.as_deref(), Some(body.as_slice()));
        assert_eq!(
            conn.sender(),
            Some(0x1f),
            "the sender is read from X-Server-From"
        );
    }
}

#[test]
fn stream_messages_are_cut_out_of_any_chunking_and_rechunked_one_per_chunk() {
    let msgs: Vec<Vec<u8>> = (0..3)
        .map(|i| message(MSG_HEARTBEAT, 2, 0, &[], i))
        .collect();
    let body: Vec<u8> = msgs
        .iter()
        .flat_map(|m| {
            let mut v = (m.len() as u64).to_be_bytes().to_vec();
            v.extend_from_slice(m);
            v
        })
        .collect();
    for chunk_size in [1, 5, 9, 100] {
        for piece in [1, 3, 64] {
            let conn = ConnState::default();
            feed(
                &mut RaftHttp::new(Flow::Request),
                &conn,
                STREAM_GET.as_bytes(),
                piece,
            );
            let mut resp = STREAM_OK.as_bytes().to_vec();
            resp.extend_from_slice(&chunked(&body, chunk_size));
            let units = feed(&mut RaftHttp::new(Flow::Reply), &conn, &resp, piece);
            let found: Vec<&[u8]> = messages(&units)
                .iter()
                .map(|u| u.payload.as_deref().unwrap())
                .collect();
            let want: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
            assert_eq!(found, want, "chunks of {chunk_size}, pieces of {piece}");
            assert_eq!(units[0].wire.as_ref(), STREAM_OK.as_bytes());
            let wire: Vec<u8> = units[1..].iter().flat_map(|u| u.wire.to_vec()).collect();
            assert_eq!(
                dechunk(&wire),
                body,
                "the re-chunked stream carries the same body"
            );
        }
    }
}

#[test]
fn an_abbreviated_msgapp_goes_on_whole_with_the_position_the_sender_meant() {
    let conn = ConnState::default();
    feed(
        &mut RaftHttp::new(Flow::Request),
        &conn,
        MSGAPP_GET.as_bytes(),
        1000,
    );
    // A whole MsgApp (term 4, entries 5 and 6), then an abbreviated one carrying entries 7 and 8, commit 6,
    // then a link heartbeat.
    let first = message(MSG_APP, 4, 4, &[(4, 5), (4, 6)], 5);
    let mut body = vec![2];
    body.extend_from_slice(&(first.len() as u64).to_be_bytes());
    body.extend_from_slice(&first);
    body.push(1);
    body.extend_from_slice(&2u64.to_be_bytes());
    for i in [7, 8] {
        let e = entry(4, i);
        body.extend_from_slice(&(e.len() as u64).to_be_bytes());
        body.extend_from_slice(&e);
    }
    body.extend_from_slice(&6u64.to_be_bytes());
    body.push(0);
    for piece in [1, 4, 1000] {
        let mut resp = STREAM_OK.as_bytes().to_vec();
        resp.extend_from_slice(&chunked(&body, 7));
        let conn2 = ConnState::default();
        feed(
            &mut RaftHttp::new(Flow::Request),
            &conn2,
            MSGAPP_GET.as_bytes(),
            1000,
        );
        let units = feed(&mut RaftHttp::new(Flow::Reply), &conn2, &resp, piece);
        let msgs = messages(&units);
        assert_eq!(msgs.len(), 3, "pieces of {piece}");
        let expanded = msgs[1].payload.as_deref().unwrap();
        let fields: Vec<(u32, Value)> = Fields::new(expanded).collect();
        let get = |n: u32| {
            fields
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| *v)
                .unwrap()
        };
        assert_eq!(get(1), Value::Varint(MSG_APP));
        assert_eq!(
            get(2),
            Value::Varint(2),
            "to: the requester (X-Server-From)"
        );
        assert_eq!(
            get(3),
            Value::Varint(10),
            "from: the stream's writer (X-Raft-To)"
        );
        assert_eq!(get(4), Value::Varint(4), "term");
        assert_eq!(get(5), Value::Varint(4), "log term");
        assert_eq!(
            get(6),
            Value::Varint(6),
            "index: the last entry sent before"
        );
        assert_eq!(get(8), Value::Varint(6), "commit");
        let entries = fields.iter().filter(|(k, _)| *k == 7).count();
        assert_eq!(entries, 2);
        // On the wire it is a whole msgappv2 message: type 2, length, protobuf.
        let wire: Vec<u8> = msgs[1].wire.to_vec();
        let inner = dechunk(&[wire.as_slice(), b"0\r\n\r\n"].concat());
        assert_eq!(inner[0], 2);
        assert_eq!(&inner[9..], expanded);
        assert_eq!(msgs[2].payload.as_deref(), Some(LINK_HEARTBEAT_PB));
    }
}

#[test]
fn responses_pair_with_their_requests_and_other_bodies_pass_as_they_are() {
    let conn = ConnState::default();
    let reqs = format!("GET /members HTTP/1.1\r\nHost: x\r\n\r\n{STREAM_GET}");
    let req_units = feed(&mut RaftHttp::new(Flow::Request), &conn, reqs.as_bytes(), 3);
    assert!(messages(&req_units).is_empty());
    let json = "[{\"id\":1}]";
    let hb = message(MSG_HEARTBEAT, 1, 0, &[], 0);
    let mut body = (hb.len() as u64).to_be_bytes().to_vec();
    body.extend_from_slice(&hb);
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{json}{STREAM_OK}",
        json.len()
    )
    .into_bytes();
    resp.extend_from_slice(&chunked(&body, 4));
    let units = feed(&mut RaftHttp::new(Flow::Reply), &conn, &resp, 5);
    let msgs = messages(&units);
    assert_eq!(msgs.len(), 1, "only the stream's body holds a message");
    assert_eq!(msgs[0].payload.as_deref(), Some(hb.as_slice()));
}

#[test]
fn bytes_that_are_not_http_pass_on_unchanged() {
    let conn = ConnState::default();
    let junk = b"\x00\x01\x02 not http at all\r\n\r\n and more".to_vec();
    let units = feed(&mut RaftHttp::new(Flow::Request), &conn, &junk, 4);
    let wire: Vec<u8> = units.iter().flat_map(|u| u.wire.to_vec()).collect();
    assert_eq!(wire, junk);
    assert!(messages(&units).is_empty());
}
