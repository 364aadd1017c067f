#!/usr/bin/env python3
"""Maelstrom's unique-ids workload: answer `generate` with `generate_ok` and an `id` unique across the
cluster, every node and every process of it (the node's name, the process's start time, a counter).

With WRONG=1 the id is the counter alone, so two nodes hand out the same ids (squall's check must catch it).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node import Node  # noqa: E402

WRONG = os.environ.get("WRONG") == "1"
node = Node()
started = time.time_ns()
count = [0]


def generate(m):
    count[0] += 1
    uid = count[0] if WRONG else f"{node.id}-{started}-{count[0]}"
    node.reply(m, {"type": "generate_ok", "id": uid})


node.on("generate", generate)
node.run()
