#!/usr/bin/env python3
# A synthetic lin-kv session log for measuring `squall report` (BENCHMARKS.md, "`squall report` memory: the
# phase located"). Usage: synthetic-linkv-log.py REAL_LOG MINUTES OUT.jsonl.gz — REAL_LOG is the event log of a
# short `squall up --workload lin-kv` session, whose header events are kept; MINUTES of a linearizable lin-kv
# workload follow at 49 operations a second (8 clients, 5 keys, ~1% info, half of which took effect).
import gzip, json, random, sys, heapq
src, minutes, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rng = random.Random(7)
lines = gzip.open(src, 'rt').read().splitlines()
head = []
for l in lines[1:]:
    if '"Op"' in l or '"ClientOp"' in l or '"StatusDelta"' in l: break
    head.append(l)
end_ms = int(minutes * 60_000)
events = []  # (at_ms, seq, json)
seq = 0
def emit(at_ms, ev):
    global seq
    events.append((at_ms, seq, ev)); seq += 1
KEYS, CLIENTS = 5, 8
value = [None]*KEYS; issued = [0]*KEYS; seen = [None]*KEYS
free = list(range(CLIENTS)); next_proc = CLIENTS
inflight = []  # heap of (complete_ns, id, proc, key, val, info)
opid = 0
t = 100
completions = []  # produced in time order below
ok = failed = 0
pending_events = []
def complete_until(limit_ns):
    global ok, failed, next_proc
    while inflight and inflight[0][0] <= limit_ns:
        cns, _, proc, key, val, info = heapq.heappop(inflight)
        kind = "Ok"; outv = val
        if info:
            if rng.random() < 0.5:
                if "Write" in val: value[key] = val["Write"]
                elif "Cas" in val and value[key] == val["Cas"][0]: value[key] = val["Cas"][1]
            kind = "Info"
        elif "Read" in val:
            outv = {"Read": value[key]}; seen[key] = value[key]
        elif "Write" in val:
            value[key] = val["Write"]; seen[key] = value[key]
        else:
            f, to = val["Cas"]
            if value[key] == f: value[key] = to; seen[key] = to
            else: kind = "Fail"
        emit(cns // 1_000_000, ("op", kind, proc, cns, key, outv))
        if kind == "Ok": ok += 1
        else: failed += 1
        if kind == "Info":
            free.append(next_proc); next_proc += 1
        else:
            free.append(proc)
while t < end_ms:
    tns = t * 1_000_000 + rng.randrange(1_000_000)
    complete_until(tns)
    if free:
        proc = free.pop(rng.randrange(len(free)))
        key = rng.randrange(KEYS)
        r = rng.randrange(4)
        if r < 2: val = {"Read": None}
        elif r == 2:
            issued[key] += 1; val = {"Write": issued[key]}
        else:
            f = seen[key] if (seen[key] is not None and rng.random() < 0.8) else rng.randint(0, issued[key])
            issued[key] += 1; val = {"Cas": [f, issued[key]]}
        lat = int(rng.expovariate(1/3_000_000)) + 500_000
        if rng.random() < 0.01: lat += 200_000_000
        info = rng.random() < 0.01 and "Read" not in val
        emit(tns // 1_000_000, ("op", "Invoke", proc, tns, key, val))
        heapq.heappush(inflight, (tns + lat, opid, proc, key, val, info)); opid += 1
    if t % 500 == 0:
        emit(t, ("raw", {"Workload": {"on": True, "rate": 49, "ok": ok, "failed": failed}}))
    t += 20 + (1 if rng.random() < 0.4 else 0)
complete_until(10**30)
events.sort(key=lambda e: (e[0], e[1]))
n = 0; index = 0
with gzip.open(out, 'wt') as f:
    f.write(lines[0] + "\n")
    for l in head:
        f.write(l + "\n"); n += 1
    for at, _, ev in events:
        if ev[0] == "raw":
            f.write(json.dumps({"at_ms": at, "event": ev[1]}) + "\n"); n += 1; continue
        _, kind, proc, tns, key, val = ev
        f.write(json.dumps({"at_ms": at, "event": {"Op": {"op": {"index": index, "kind": kind, "process": proc, "time": tns, "key": key, "value": val}}}}) + "\n")
        index += 1; n += 1
        if kind != "Invoke":
            f.write(json.dumps({"at_ms": at, "event": {"ClientOp": {"op": "op", "result": "ok" if kind == "Ok" else kind.lower(), "latency_us": 1000}}}) + "\n"); n += 1
    f.write(json.dumps({"at_ms": end_ms + 100, "event": "Quit"}) + "\n"); n += 1
    f.write(json.dumps({"squall_event_log_end": {"events": n}}) + "\n")
print(out, "events", n, "ops", opid)
