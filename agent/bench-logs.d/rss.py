#!/usr/bin/env python3
"""Memory of one process for agent/bench-logs, read from /proc (KiB).

  rss.py settle PID         poll VmRSS every 100 ms until it has not moved by more than
                            16 KiB for 2 s (at most 30 s); print its status figures, the
                            start of /proc/PID/smaps_rollup and the largest mappings
  rss.py watch PID OUT      sample VmRSS and CPU time every 100 ms until PID exits (or
                            is a zombie); write the samples to OUT as JSON
"""
import json
import os
import sys
import time

INTERVAL = 0.1
TICK = os.sysconf("SC_CLK_TCK")


def status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "Threads"):
                    out[k] = int(v.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def mappings(pid, top=8):
    """The largest mappings by Rss, grouped by what they map."""
    sizes, name = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split()
            if "-" in first[0] and not first[0].endswith(":"):
                name = first[5] if len(first) > 5 else "[anon]"
                name = os.path.basename(name) if name.startswith("/") else name
            elif first[0] == "Rss:":
                sizes[name] = sizes.get(name, 0) + int(first[1])
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:top]


def settle(pid):
    start = time.monotonic()
    window = int(2 / INTERVAL)
    samples = []
    while time.monotonic() - start < 30:
        s = status(pid)
        if "VmRSS" not in s:
            sys.exit(f"process {pid} is gone")
        samples.append(s["VmRSS"])
        last = samples[-window:]
        if len(last) == window and max(last) - min(last) <= 16:
            break
        time.sleep(INTERVAL)
    s = status(pid)
    s["settle_s"] = round(time.monotonic() - start, 1)
    s["mappings"] = mappings(pid)
    with open(f"/proc/{pid}/smaps_rollup") as f:
        s["rollup"] = {l.split(":")[0]: int(l.split()[1]) for l in f if l.split()[-1] == "kB"}
    print(json.dumps(s))


def watch(pid, out):
    samples = []
    while True:
        s = status(pid)
        cpu = cpu_seconds(pid)
        if "VmRSS" not in s or cpu is None:
            break
        samples.append({"t": time.time(), "rss": s["VmRSS"], "hwm": s["VmHWM"], "cpu": cpu})
        time.sleep(INTERVAL)
    with open(out, "w") as f:
        json.dump(samples, f)


if __name__ == "__main__":
    if sys.argv[1] == "settle":
        settle(int(sys.argv[2]))
    else:
        watch(int(sys.argv[2]), sys.argv[3])
