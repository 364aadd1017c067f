#!/usr/bin/env python3
"""Maelstrom's g-counter workload as a state-based CRDT: `add` adds `delta` to this node's own count (kept in
`count.json` in its data directory, fsynced before `add_ok`, so a restart keeps it); every 100 ms each node
sends every other node the counts it knows (`gossip`), which take the larger of each; `read` answers the sum.

With WRONG=1 nodes never gossip, so each reads only its own adds and squall's check must catch it.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node import Node  # noqa: E402

WRONG = os.environ.get("WRONG") == "1"
STORE = "count.json"
node = Node()
counts = {}


def load():
    try:
        with open(STORE) as f:
            counts[node.id] = json.load(f)
    except FileNotFoundError:
        counts[node.id] = 0


def save():
    tmp = STORE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(counts[node.id], f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, STORE)


def add(m):
    counts[node.id] = counts.get(node.id, 0) + m["body"]["delta"]
    save()
    node.reply(m, {"type": "add_ok"})


def read(m):
    node.reply(m, {"type": "read_ok", "value": sum(counts.values())})


def gossip(m):
    for n, c in m["body"]["counts"].items():
        if n != node.id:
            counts[n] = max(counts.get(n, 0), c)


def spread():
    if WRONG:
        return
    for n in node.ids:
        if n != node.id:
            node.send(n, {"type": "gossip", "counts": counts})


node.on_init = load
node.on("add", add)
node.on("read", read)
node.on("gossip", gossip)
node.every(0.1, spread)
node.run()
