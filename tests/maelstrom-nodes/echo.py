#!/usr/bin/env python3
"""Maelstrom's echo workload: answer `echo` with `echo_ok` carrying the same `echo` field.

With WRONG=1 node n2 answers with a changed `echo` (squall's echo check must catch it).
With MUTE_AFTER=N every node stops answering after its first N echoes (squall's liveness check must see no
operation complete).
With REPORT=1 every node tells squall its role and term through the reserved destination `squall` after
`init` (n1 says it leads term 2, the others follow it), as a Raft node may (README, "The destination
`squall`").
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node import Node  # noqa: E402

WRONG = os.environ.get("WRONG") == "1"
REPORT = os.environ.get("REPORT") == "1"
MUTE_AFTER = int(os.environ.get("MUTE_AFTER", "-1"))
node = Node()
answered = [0]


def echo(m):
    if 0 <= MUTE_AFTER <= answered[0]:
        return
    answered[0] += 1
    said = m["body"]["echo"]
    if WRONG and node.id == "n2":
        said = f"{said}?"
    node.reply(m, {"type": "echo_ok", "echo": said})


def report():
    leader = node.id == "n1"
    node.write(
        {
            "src": node.id,
            "dest": "squall",
            "body": {
                "type": "status",
                "role": "leader" if leader else "follower",
                "term": 2,
                "leader": "n1",
                "commit": 5 if leader else 4,
            },
        }
    )


node.on("echo", echo)
if REPORT:
    node.on_init = report
node.run()
