#!/usr/bin/env python3
"""A correct lin-kv node: the first node of `node_ids` holds the only copy of the store and answers every
operation in the order it receives them; the others forward each client request to it and relay the answer.
The leader keeps the store in `kv.json` in its working directory (its data directory under squall), written
to a temporary file, fsynced, renamed over `kv.json` and its directory fsynced (so the rename is durable too)
before it answers, so a restarted leader answers as the one before it did, also after a power cut.

With WRONG=1 in the environment it is deliberately wrong: a follower serves reads from its own cache of the
values it saw pass (its own forwarded writes and cas), never asking the leader, so it returns stale values
and misses keys others wrote. squall's linearizability check must catch that.

With SERVICE=1 (or SERVICE=lin-kv) every node forwards every operation to squall's `lin-kv` service instead
of to the first node, and relays the answer (correct, and survives any node's crash). SERVICE=seq-kv or
SERVICE=lww-kv forwards to that service instead: a lin-kv node built on a store that promises less than
linearizability, which squall's check must catch (seq-kv serves stale reads; lww-kv's replicas disagree).

With GARBAGE=1 it also writes lines that are not messages, or are addressed to nobody, before each answer:
squall must drop them and keep routing.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node import Node  # noqa: E402

WRONG = os.environ.get("WRONG") == "1"
GARBAGE = os.environ.get("GARBAGE") == "1"
SERVICE = {"": None, "1": "lin-kv"}.get(os.environ.get("SERVICE", ""), os.environ.get("SERVICE"))
STORE = "kv.json"

node = Node()
kv = {}
cache = {}
said_service = []


def load():
    global kv
    try:
        with open(STORE) as f:
            kv = json.load(f)
    except FileNotFoundError:
        kv = {}


def save():
    tmp = STORE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(kv, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, STORE)
    # The rename is in the directory: until the directory is fsynced a power cut may undo it.
    d = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(d)
    finally:
        os.close(d)


def leader():
    return node.ids[0]


def garbage():
    if GARBAGE:
        sys.stdout.write("this is not json\n")
        sys.stdout.write('{"src": "%s", "body": {"type": "no_dest"}}\n' % node.id)
        sys.stdout.write('{"src": "%s", "dest": "n99", "body": {"type": "lost"}}\n' % node.id)
        sys.stdout.flush()


def apply(body):
    """Applies one operation at the leader; returns the answer body."""
    key = str(body["key"])
    kind = body["type"]
    if kind == "read":
        if key not in kv:
            return {"type": "error", "code": 20, "text": "not found"}
        return {"type": "read_ok", "value": kv[key]}
    if kind == "write":
        kv[key] = body["value"]
        save()
        return {"type": "write_ok"}
    if kind == "cas":
        if key not in kv:
            return {"type": "error", "code": 20, "text": "not found"}
        if kv[key] != body["from"]:
            return {"type": "error", "code": 22, "text": f"expected {body['from']}, found {kv[key]}"}
        kv[key] = body["to"]
        save()
        return {"type": "cas_ok"}
    return {"type": "error", "code": 10, "text": f"unknown {kind}"}


def handle(msg):
    garbage()
    body = msg["body"]
    if node.id == leader() and not SERVICE:
        node.reply(msg, apply(body))
        return
    key = str(body["key"])
    if WRONG and body["type"] == "read":
        if key in cache:
            node.reply(msg, {"type": "read_ok", "value": cache[key]})
        else:
            node.error(msg, 20, "not in cache")
        return
    fields = {k: v for k, v in body.items() if k not in ("msg_id", "in_reply_to")}

    def relay(answer):
        if answer["src"] == SERVICE and not said_service:
            said_service.append(True)
            node.log(f"answered by the {SERVICE} service")
        a = {k: v for k, v in answer["body"].items() if k not in ("msg_id", "in_reply_to")}
        if a["type"] == "write_ok":
            cache[key] = body["value"]
        elif a["type"] == "cas_ok":
            cache[key] = body["to"]
        elif a["type"] == "read_ok":
            cache[key] = a["value"]
        node.reply(msg, a)

    node.send(SERVICE or leader(), fields, relay)


load()
for kind in ("read", "write", "cas"):
    node.on(kind, handle)
node.run()
