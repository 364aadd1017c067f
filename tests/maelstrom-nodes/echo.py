#!/usr/bin/env python3
"""Maelstrom's echo workload: answer `echo` with `echo_ok` carrying the same `echo` field."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node import Node  # noqa: E402

node = Node()
node.on("echo", lambda m: node.reply(m, {"type": "echo_ok", "echo": m["body"]["echo"]}))
node.run()
