#!/usr/bin/env python3
"""Where a profile's samples went, by the parts the performance page names: reads a
`perf record` file of scripts/bench's profiles section and appends one profile to a JSON
lines file for bench/report.py.

Usage: profile.py PERF_DATA --out PROFILES_JSONL --key K --title TEXT
                  [--thread COMM | --skip-thread COMM ...] [--machine] [--note TEXT]

Every sample is counted once (`perf report --no-children`, by thread, file and function).
--thread keeps the samples of that thread only (the agent's `logs` thread) and also
records each thread's share of the whole; --skip-thread leaves a thread out (the shell
that starts the agent again and again, the app). --machine says the recording was of the
whole machine (`perf record -a`): the threads' shares of it are not recorded. Each
function is put in the first part of PARTS (KERNEL_PARTS for the kernel's) whose pattern
it matches; the rest is "other".
The ten functions with the most samples are kept too, as perf names them.
"""
import argparse
import collections
import json
import re
import subprocess
import sys

# (part, pattern on the function's name), the first match wins. The names are the ones
# docs/performance.md uses for them.
PARTS = [
    ("the trigger walk (`lockstep`, the prefilter's marks)", r"sanitize::lockstep|sanitize::Walk|sanitize::prefilter::"),
    ("`detect` and the detectors", r"sanitize::Sanitizer::(detect|at_trigger)|sanitize::(keys|tokens|cards)::"),
    ("the secret search (aho-corasick, Teddy)", r"aho_corasick|sanitize::secrets::"),
    ("SigV4's SHA-256 of the body", r"sha2::|sha256|Sha256"),
    ("JSON escaping (`push_json_text`, the body's `push_json_string_bytes`)", r"logship::json::(push_json|escape_at|json_string)"),
    ("the JSON-line reader", r"logship::json::Reader|quick_object|logship::time::"),
    ("building text events", r"logship::structure::"),
    ("reading lines (`capture`)", r"logship::capture::"),
    ("queueing events for the writers (`Buffer`)", r"logship::buffer::"),
    ("batching and the PutLogEvents body", r"logship::(batch|ship)::"),
    ("the HTTP request (SDK, hyper)", r"aws_smithy|aws_sdk|aws_sigv4|hyper::|h2::"),
    ("UTF-8 checks", r"from_utf8|utf8|Utf8"),
    ("line ends (`memchr`)", r"memchr|memrchr"),
    ("copies (`memcpy`, `memmove`)", r"memcpy|memmove|memset"),
    ("malloc and free", r"malloc|free|_int_|realloc|alloc::raw_vec|tcache|unlink_chunk"),
    ("the dynamic loader", r"^_dl_|dl_main|do_lookup|check_match|elf_"),
    ("glibc's and aws-lc's CPU detection (CPUID)",
     r"handle_amd|handle_intel|init_cpu_features|get_common_indices|update_active|"
     r"cpu_indicator_init|init_cacheinfo|intel_check_word|cpuid"),
]
# The kernel's functions, by what they are for (a sample taken while interrupts were off
# lands where they are turned on again: `_raw_spin_unlock_irqrestore`, a wake-up's).
KERNEL_PARTS = [
    ("the kernel: page faults and memory",
     r"fault|folio|clear_page|copy_mc|filemap|pte|pmd|handle_mm|anonymous|lru|rmqueue|"
     r"alloc_pages|memcg|zap|unmap|free_pages|free_unref|tlb|vma|page_range|mm_"),
    ("the kernel: wake-ups and switches",
     r"spin_unlock_irq|finish_task_switch|schedule|wake|futex|ttwu|enqueue|dequeue|switch_to|pick_next"),
    ("the kernel: pipes and files", r"copy_to_iter|copy_from_iter|copy_user|pipe_|vfs_|fsnotify"),
]
KERNEL = "the kernel: the rest"
OTHER = "other"


def samples(path):
    """(samples, thread, file, function) of every line of perf's report."""
    cmd = ["perf", "report", "-i", path, "--stdio", "--no-children", "-q", "-n",
           "--sort", "comm,dso,sym", "-t", "\t"]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in text.splitlines():
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) < 5 or not fields[1].isdigit():
            continue
        count, comm, dso, sym = int(fields[1]), fields[2], fields[3], fields[4]
        kernel = sym.startswith("[k]")
        sym = re.sub(r"^\[[.k]\]\s*", "", sym)
        yield count, comm, dso, sym, kernel


def part_of(sym, dso, kernel):
    if kernel or dso.startswith("[kernel"):
        return next((name for name, pattern in KERNEL_PARTS if re.search(pattern, sym)), KERNEL)
    for name, pattern in PARTS:
        if re.search(pattern, sym):
            return name
    return OTHER


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--title", required=True)
    ap.add_argument("--thread")
    ap.add_argument("--skip-thread", action="append", default=[])
    ap.add_argument("--machine", action="store_true")
    ap.add_argument("--note", default="")
    a = ap.parse_args()

    rows = list(samples(a.data))
    if not rows:
        sys.exit(f"profile.py: no samples in {a.data}")
    threads = collections.Counter()
    for count, comm, *_ in rows:
        threads[comm] += count
    total = sum(threads.values())
    kept = [r for r in rows
            if (a.thread is None or r[1] == a.thread) and r[1] not in a.skip_thread]
    kept_total = sum(r[0] for r in kept)
    if not kept_total:
        sys.exit(f"profile.py: no samples of thread {a.thread!r} in {a.data} (threads: {dict(threads)})")
    parts = collections.Counter()
    functions = collections.Counter()
    for count, _comm, dso, sym, kernel in kept:
        parts[part_of(sym, dso, kernel)] += count
        functions[sym if not kernel else f"{sym} (kernel)"] += count

    def share(n, of):
        return round(100.0 * n / of, 1)

    profile = {
        "key": a.key,
        "title": a.title,
        "note": a.note,
        "samples": kept_total,
        "thread": a.thread,
        # Part by part, largest first, "other" last.
        "parts": [(p, share(n, kept_total)) for p, n in parts.most_common() if p != OTHER]
        + [(OTHER, share(parts[OTHER], kept_total))],
        "functions": [(f, share(n, kept_total)) for f, n in functions.most_common(10)],
        "threads": [(t, share(n, total)) for t, n in threads.most_common(6)]
        if (a.thread or a.skip_thread) and not a.machine else [],
    }
    with open(a.out, "a") as f:
        f.write(json.dumps(profile) + "\n")
    print(f"{a.title}: {kept_total} samples")
    for p, s in profile["parts"]:
        print(f"  {s:5.1f} %  {p}")
    print("  functions:")
    for fn, s in profile["functions"]:
        print(f"  {s:5.1f} %  {fn[:140]}")


if __name__ == "__main__":
    main()
