#!/usr/bin/env python3
"""CPU time of a command, for scripts/bench's log-pipeline rows.

Usage: cpu.py RUNS OUT_JSON [--warmup N] -- COMMAND...

Runs COMMAND RUNS times (after N untimed warm-up runs, default 1), stdin from /dev/null,
stdout and stderr to /dev/null, one after the other. Each run's user and system CPU time
come from wait4(): the command's own and that of every descendant it waited for (the
agent reaps `cat`, so `agent -- cat FILE` counts both), every thread included. Writes
{"runs": [{"wall": s, "user": s, "sys": s, "cpu": s}, ...]} to OUT_JSON. A run that
exits non-zero stops it (exit 1): a figure of a failed run means nothing.
"""
import json
import os
import subprocess
import sys
import time


def run_once(cmd):
    started = time.perf_counter()
    with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out:
        proc = subprocess.Popen(cmd, stdin=null_in, stdout=null_out, stderr=null_out)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"cpu.py: {' '.join(cmd)} exited with {proc.returncode}")
    return {"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime,
            "cpu": usage.ru_utime + usage.ru_stime}


def main():
    args = sys.argv[1:]
    split = args.index("--")
    opts, cmd = args[:split], args[split + 1:]
    runs, out = int(opts[0]), opts[1]
    warmup = int(opts[opts.index("--warmup") + 1]) if "--warmup" in opts else 1
    for _ in range(warmup):
        run_once(cmd)
    results = [run_once(cmd) for _ in range(runs)]
    with open(out, "w") as f:
        json.dump({"runs": results}, f)


if __name__ == "__main__":
    main()
