#!/usr/bin/env python3
"""The app of agent/bench-logs: writes lines of the corpus to its stdout at a paced rate,
one write() per line, and times every write.

Usage: writer.py CORPUS BYTES_PER_SECOND SECONDS RESULT_JSON
Writes the first BYTES_PER_SECOND * SECONDS bytes of CORPUS (whole lines, wrapping
around if the corpus is shorter). Pacing: after each write the writer compares the
bytes written with the schedule and sleeps when it is 1 ms or more ahead, so it writes
in bursts of about 1 ms of output. Each latency is the time of one os.write() call of
one line (about 185 bytes on the corpus), measured with perf_counter_ns around it.
The result (JSON) has lines, bytes, the wall-clock start and end, the achieved rate and
the latency percentiles in microseconds.
"""
import json
import os
import sys
import time
from array import array


def load(path, total):
    lines, n = [], 0
    while n < total:
        with open(path, "rb") as f:
            for line in f:
                lines.append(line)
                n += len(line)
                if n >= total:
                    break
    return lines, n


def main():
    corpus, rate, seconds, result = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    lines, total = load(corpus, int(rate * seconds))
    lat = array("q", bytes(8 * len(lines)))
    write, now, sleep = os.write, time.perf_counter_ns, time.sleep
    ns_per_byte = 1e9 / rate
    ahead_limit = 1_000_000
    written = 0
    wall_start = time.time()
    start = now()
    for i, line in enumerate(lines):
        t0 = now()
        n = write(1, line)
        while n < len(line):  # a pipe write of a short line is atomic; be safe anyway
            n += write(1, line[n:])
        t1 = now()
        lat[i] = t1 - t0
        written += n
        ahead = start + written * ns_per_byte - t1
        if ahead >= ahead_limit:
            sleep(ahead / 1e9)
    end = now()
    wall_end = time.time()
    s = sorted(lat)
    pct = lambda p: s[min(len(s) - 1, int(p * len(s)))] / 1000
    out = {
        "lines": len(lines), "bytes": written,
        "wall_start": wall_start, "wall_end": wall_end,
        "seconds": (end - start) / 1e9, "mb_per_s": written / ((end - start) / 1e3),
        "p50_us": pct(0.50), "p99_us": pct(0.99), "p999_us": pct(0.999), "max_us": s[-1] / 1000,
        "over_1ms": sum(1 for x in s if x > 1_000_000),
    }
    with open(result + ".tmp", "w") as f:
        json.dump(out, f)
    os.rename(result + ".tmp", result)


if __name__ == "__main__":
    main()
