"""A tiny Maelstrom node library for squall's tests (Python standard library only).

A node reads one JSON message per line on stdin and writes one per line on stdout (jepsen-io/maelstrom,
doc/protocol.md). `Node.run` answers `init`, then hands every other message to the handler registered for
its body type; `reply` and `send` write messages; `on_reply` waits for an answer to a request this node sent.
"""
import json
import sys
import threading
import time


class Node:
    def __init__(self):
        self.id = None
        self.ids = []
        # Message ids keep rising across restarts, so a late answer to a request of this node's previous
        # process never matches a request of this one.
        self.next_msg = time.time_ns() // 1000
        self.handlers = {}
        self.callbacks = {}
        # Handlers run on the reading thread; `every` runs a function on a thread of its own: one lock keeps
        # their writes whole and their state consistent.
        self.lock = threading.RLock()
        self.on_init = None

    def on(self, kind, handler):
        self.handlers[kind] = handler

    def log(self, text):
        print(f"{self.id}: {text}", file=sys.stderr, flush=True)

    def write(self, msg):
        with self.lock:
            sys.stdout.write(json.dumps(msg) + "\n")
            sys.stdout.flush()

    def every(self, seconds, fn):
        """Runs `fn` every `seconds` (after `init`), under the node's lock, on a daemon thread."""

        def loop():
            while True:
                time.sleep(seconds)
                if self.id is None:
                    continue
                with self.lock:
                    fn()

        threading.Thread(target=loop, daemon=True).start()

    def send(self, dest, body, callback=None):
        self.next_msg += 1
        body = dict(body, msg_id=self.next_msg)
        if callback is not None:
            self.callbacks[self.next_msg] = callback
        self.write({"src": self.id, "dest": dest, "body": body})

    def reply(self, req, body):
        self.next_msg += 1
        body = dict(body, msg_id=self.next_msg, in_reply_to=req["body"].get("msg_id"))
        self.write({"src": self.id, "dest": req["src"], "body": body})

    def error(self, req, code, text):
        self.reply(req, {"type": "error", "code": code, "text": text})

    def run(self):
        for line in sys.stdin:
            msg = json.loads(line)
            with self.lock:
                self.handle(msg)

    def handle(self, msg):
        """Answers `init`, else hands the message to its callback or its type's handler."""
        body = msg["body"]
        kind = body["type"]
        if kind == "init":
            self.id = body["node_id"]
            self.ids = body["node_ids"]
            self.log(f"init: {self.ids}")
            self.reply(msg, {"type": "init_ok"})
            if self.on_init is not None:
                self.on_init()
            return
        callback = self.callbacks.pop(body.get("in_reply_to"), None)
        if callback is not None:
            callback(msg)
            return
        handler = self.handlers.get(kind)
        if handler is None:
            self.error(msg, 10, f"no handler for {kind}")
        else:
            handler(msg)
