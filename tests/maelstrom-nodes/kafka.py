#!/usr/bin/env python3
"""Maelstrom's kafka workload, single leader: the first node of `node_ids` holds every log and the committed
offsets (in `logs.json` in its data directory, fsynced before it answers) and answers `send`, `poll`,
`commit_offsets` and `list_committed_offsets`; the others forward each request to it and relay the answer.

With WRONG=1 every node keeps logs of its own and answers itself, so two nodes give out the same offset of a
key for different messages: squall's kafka check must catch it.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node import Node  # noqa: E402

WRONG = os.environ.get("WRONG") == "1"
STORE = "logs.json"
node = Node()
state = {"logs": {}, "committed": {}}


def load():
    global state
    try:
        with open(STORE) as f:
            state = json.load(f)
    except FileNotFoundError:
        pass


def save():
    tmp = STORE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, STORE)


def apply(body):
    kind = body["type"]
    logs, committed = state["logs"], state["committed"]
    if kind == "send":
        log = logs.setdefault(body["key"], [])
        log.append(body["msg"])
        save()
        return {"type": "send_ok", "offset": len(log) - 1}
    if kind == "poll":
        msgs = {}
        for key, offset in body["offsets"].items():
            log = logs.get(key, [])
            msgs[key] = [[o, log[o]] for o in range(max(offset, 0), min(len(log), offset + 10))]
        return {"type": "poll_ok", "msgs": msgs}
    if kind == "commit_offsets":
        for key, offset in body["offsets"].items():
            committed[key] = max(committed.get(key, 0), offset)
        save()
        return {"type": "commit_offsets_ok"}
    if kind == "list_committed_offsets":
        return {
            "type": "list_committed_offsets_ok",
            "offsets": {k: committed[k] for k in body["keys"] if k in committed},
        }
    return {"type": "error", "code": 10, "text": f"unknown {kind}"}


def handle(msg):
    body = msg["body"]
    if WRONG or node.id == node.ids[0]:
        node.reply(msg, apply(body))
        return
    fields = {k: v for k, v in body.items() if k not in ("msg_id", "in_reply_to")}

    def relay(answer):
        node.reply(msg, {k: v for k, v in answer["body"].items() if k not in ("msg_id", "in_reply_to")})

    node.send(node.ids[0], fields, relay)


node.on_init = load
for kind in ("send", "poll", "commit_offsets", "list_committed_offsets"):
    node.on(kind, handle)
node.run()
