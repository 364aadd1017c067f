#!/usr/bin/env python3
"""Maelstrom's broadcast workload: `topology` gives each node its neighbours, `broadcast` adds a value,
`read` answers every value the node has seen. Values spread by gossip: every 100 ms each node sends each
neighbour the values it does not know the neighbour has (`gossip`), and the neighbour answers with every value
it holds (`gossip_ok`), so a lost message is sent again. A value broadcast to this node is kept in
`values.json` in its data directory (fsynced before `broadcast_ok`), so a restart loses no acknowledged value.

With WRONG=1 nodes never gossip: a value reaches only the node it was broadcast to, and squall's check must
see that the other nodes never read it.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node import Node  # noqa: E402

WRONG = os.environ.get("WRONG") == "1"
STORE = "values.json"
node = Node()
values = set()


def load():
    try:
        with open(STORE) as f:
            values.update(json.load(f))
    except FileNotFoundError:
        pass


def save():
    tmp = STORE + ".tmp"
    with open(tmp, "w") as f:
        json.dump(sorted(values), f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, STORE)
neighbours = []
# What each neighbour is known to hold (from its last gossip_ok).
known = {}


def topology(m):
    neighbours[:] = m["body"]["topology"].get(node.id, [])
    for n in neighbours:
        known.setdefault(n, set())
    node.log(f"neighbours {neighbours}")
    node.reply(m, {"type": "topology_ok"})


def broadcast(m):
    values.add(m["body"]["message"])
    save()
    node.reply(m, {"type": "broadcast_ok"})


def read(m):
    node.reply(m, {"type": "read_ok", "messages": sorted(values)})


def gossip(m):
    values.update(m["body"]["messages"])
    node.reply(m, {"type": "gossip_ok", "messages": sorted(values)})


def gossip_ok(m):
    known[m["src"]] = set(m["body"]["messages"])


def spread():
    if WRONG:
        return
    for n in neighbours:
        node.send(n, {"type": "gossip", "messages": sorted(values - known.get(n, set()))})


node.on_init = load
node.on("topology", topology)
node.on("broadcast", broadcast)
node.on("read", read)
node.on("gossip", gossip)
node.on("gossip_ok", gossip_ok)
node.every(0.1, spread)
node.run()
