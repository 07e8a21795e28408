#!/usr/bin/env python3
"""A CloudWatch Logs endpoint for agent/bench-logs that answers every call at once.

Usage: sink.py PORT_FILE
Listens on 127.0.0.1 on a free port and writes the port to PORT_FILE. Calls are told
apart by their `x-amz-target` header: CreateLogGroup, CreateLogStream and
PutRetentionPolicy get 200 `{}`, PutLogEvents gets `{"nextSequenceToken":"1"}`.

PutLogEvents bodies are only kept while the agent runs (parsing them would take CPU
from the agent and the app being measured); they are counted when asked:

  GET /stats   {"targets": {target: calls}, "streams": {stream: {...}}}
               per stream: calls, events, bytes (of messages), app_events, app_lines
               (an app event's message joins continuation lines with "\\n", so lines
               are counted inside it), agent_events, and metrics (the last EMF event
               of the agent: its own counters).
"""
import gzip
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
targets = {}  # x-amz-target suffix -> calls
bodies = []  # PutLogEvents bodies not yet counted
streams = {}  # stream name -> counts


def count(body):
    req = json.loads(body)
    s = streams.setdefault(req.get("logStreamName", "?"), {
        "calls": 0, "events": 0, "bytes": 0, "app_events": 0, "app_lines": 0,
        "agent_events": 0, "metrics": None})
    s["calls"] += 1
    for ev in req.get("logEvents", []):
        msg = ev["message"]
        s["events"] += 1
        s["bytes"] += len(msg)
        if msg.startswith('{"source":"agent"') or ('"_aws":' in msg and '"source":"agent"' in msg):
            s["agent_events"] += 1
            if '"_aws":' in msg:
                s["metrics"] = {k: v for k, v in json.loads(msg).items() if isinstance(v, int)}
            continue
        s["app_events"] += 1
        # Only text events join continuation lines; their newlines are escaped as \n.
        if "\\n" in msg:
            inner = json.loads(msg)
            s["app_lines"] += inner.get("message", "").count("\n") + 1 if isinstance(inner, dict) else 1
        else:
            s["app_lines"] += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            data = b"".join(parts)
        else:
            data = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.headers.get("content-encoding", "").lower() == "gzip":
            data = gzip.decompress(data)
        return data

    def reply(self, payload, status=200):
        out = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-requestid", "bench")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_POST(self):
        data = self.body()
        target = self.headers.get("x-amz-target", "").rsplit(".", 1)[-1]
        with lock:
            targets[target] = targets.get(target, 0) + 1
            if target == "PutLogEvents":
                bodies.append(data)
            elif target == "CreateLogStream":
                name = json.loads(data).get("logStreamName", "?")
                targets["CreateLogStream:" + name] = targets.get("CreateLogStream:" + name, 0) + 1
        if target == "PutLogEvents":
            self.reply({"nextSequenceToken": "1"})
        elif target in ("CreateLogGroup", "CreateLogStream", "PutRetentionPolicy"):
            self.reply({})
        else:
            self.reply({"__type": "UnknownOperationException", "message": target}, 400)

    def do_GET(self):
        with lock:
            pending = bodies[:]
            bodies.clear()
            for b in pending:
                count(b)
            self.reply({"targets": dict(targets), "streams": streams})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
