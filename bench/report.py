#!/usr/bin/env python3
"""The report of scripts/bench: one table of medians (min, max) of every row measured in
the run, a PNG chart of it, and the generated block of docs/performance.md.

Usage: report.py RESULTS_JSONL OUT_DIR [--meta FILE] [--peers PEERS_MD] [--profiles FILE]
                 [--update-docs DOC] [--update-readme README]

RESULTS_JSONL holds one row per line, as bench/record.py writes them. Writes
OUT_DIR/results.md (the table, the run's details and, separately, the figures quoted
from PEERS_MD), OUT_DIR/chart.png (gnuplot: one panel per section and unit, a bar per row
at its median, whiskers from min to max, deckhand's rows in blue) and prints results.md.
--meta is a JSON file of the run's details (date, machine, mode, elapsed per section).
--profiles is the JSON lines file of bench/profile.py: when it holds profiles (the run had
its profiles section), they are listed under the table, part by part.
--update-docs replaces what lies between `<!-- bench:begin -->` and `<!-- bench:end -->`
in DOC with results.md (the chart is linked as bench.png beside DOC); --update-readme
does the same in README with a summary: the agent's cost against its targets, each with
the peer of the same run, and the chart.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

SECTIONS = {
    "logs": "log pipeline",
    "startup": "start-up",
    "memory": "memory",
    "health": "/health",
    "migrate": "migrations",
    "sizes": "sizes",
}
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

# The README's summary: the agent's cost against the performance issue's targets, each
# with the peer of the same run. (section, key of deckhand's row, target, its bound, peer's
# key or None, how the figure is read against the target, what limits it when missed.)
# The bound is on the figure as read ("over_bare": the row less a bare exec); a figure
# that misses it gets its row's limit, a summary of docs/performance.md's targets table.
TARGETS = [
    ("logs", "pipeline", "≥ 500 MB/s", (">=", 500), None, "value",
     "what every line costs whatever its length: about 274 ns a line and 1.23 ns a "
     "byte in a quiet hour (the row's note: the same lines cut to 40 bytes; about 380 "
     "ns a line before the chunk passes of the thirty-sixth round, 306 before the "
     "thirty-seventh's), so a 185-byte line still spends about half its time on the "
     "line as such, and 500 MB/s is 370 ns a line; that cost is spread over the stages "
     "still taken a line at a time (building the event, the card gate's and the walk's "
     "set-up, the JSON-line reader), none a fifth of it, now that an event's text is a "
     "slice of a shared block and no longer an allocation of its own (the "
     "thirty-ninth round: −4.3 % of the short lines' instructions)"),
    ("logs", "agent", "≥ 350 MB per CPU-second", (">=", 350), "node_regex", "value",
     "the pipeline above: the `logs` thread's own work is about two thirds of the CPU "
     "(`cat`, the pipe's copies and the stdout writer the rest), so 350 needs the "
     "pipeline about 40 % faster (near 520 MB/s); the same passes limit both"),
    ("memory", "agent_cpu", "≤ 6 % of one core", ("<=", 6), None, "value",
     "the pipeline alone is about 6 % of a core at 20 MB/s; shipping adds SigV4's "
     "SHA-256 of each body (at the CPU's speed) and escaping each event into it (27 % "
     "fewer instructions since the thirty-eighth round, still a tenth of the thread); "
     "the malloc and free of each event's text are gone since the thirty-ninth round "
     "(blocks of 32 KiB shared by the events written in them)"),
    ("memory", "agent_idle", "≤ 8 MiB", ("<=", 8), "tini_idle", "value", ""),
    ("startup", "agent0", "≤ +1.5 ms over a bare exec", ("<=", 1.5), "tini", "over_bare",
     "the loader's copy of about 170 pages of relocations (a non-PIE build: −0.6 ms, "
     "and no ASLR), glibc's CPU detection (about 0.4 ms in this VM, tini pays it too), "
     "four threads and two runtimes"),
    ("startup", "agent0_static", "≤ +1.5 ms over a bare exec", ("<=", 1.5), "tini", "over_bare",
     "as above, without the dynamic loader's libraries"),
]


def fmt(v):
    """Three significant figures or so, with thousands separators."""
    if v != v:  # NaN
        return "—"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                s = r["samples"]
                r["n"] = len(s)
                r["median"] = statistics.median(s) if s else float("nan")
                r["min"] = min(s) if s else float("nan")
                r["max"] = max(s) if s else float("nan")
                rows.append(r)
    order = list(SECTIONS)
    rows.sort(key=lambda r: order.index(r["section"]) if r["section"] in order else len(order))
    return rows


def table(rows):
    out = ["| section | what | median | min | max | unit | runs | note |",
           "|---|---|---:|---:|---:|---|---:|---|"]
    for r in rows:
        what = f"**{r['label']}**" if r["deckhand"] else r["label"]
        better = "higher is better" if r["better"] == "higher" else "lower is better"
        out.append(f"| {SECTIONS.get(r['section'], r['section'])} | {what} | {fmt(r['median'])} | "
                   f"{fmt(r['min'])} | {fmt(r['max'])} | {r['unit']} ({better}) | {r['n']} | {r['note']} |")
    return "\n".join(out)


def peers_table(path):
    """Vector's and Fluent Bit's columns of PEERS.md's log-pipeline table, as written there."""
    if not path or not os.path.exists(path):
        return "(PEERS.md not found: no figures quoted.)"
    lines = open(path).read().splitlines()
    try:
        start = lines.index("## Log pipeline")
    except ValueError:
        return "(PEERS.md has no \"## Log pipeline\" table: no figures quoted.)"
    block = []
    for l in lines[start + 1:]:
        if l.startswith("|"):
            block.append([c.strip() for c in l.strip().strip("|").split("|")])
        elif block:
            break  # the end of the first table of the section
    block = [b for b in block if not set("".join(b)) <= set("-: ")]
    head = block[0]
    cols = [0] + [i for i, h in enumerate(head) if h.startswith(("Vector", "Fluent Bit"))]
    out = ["| " + " | ".join(head[i] for i in cols) + " |", "|" + "---|" * len(cols)]
    for b in block[1:]:
        cells = [b[i] if i < len(b) else "" for i in cols]
        if any(c not in ("", "—") for c in cells[1:]):
            out.append("| " + " | ".join(cells) + " |")
    # Their binary sizes are in a row of another table ("tini 28 KB, Fluent Bit 6.6 MB, …").
    for l in lines:
        if l.startswith("| stripped binary size"):
            sizes = {name: m.group(1) for name in ("Vector", "Fluent Bit")
                     for m in [re.search(name + r" ([\d.]+ [KMG]B)", l)] if m}
            names = [head[i].split()[0] if head[i].startswith("Vector") else "Fluent Bit" for i in cols[1:]]
            out.append("| stripped binary size | " + " | ".join(sizes.get(n, "") for n in names) + " |")
    return "\n".join(out)


def summary(rows, meta, profiles=()):
    """The README's table: each target of the agent's cost, this run's median, the peer's;
    then, when the run has profiles, the largest parts of each."""
    by = {(r["section"], r["key"]): r for r in rows}
    bare = by.get(("startup", "bare"))
    out = ["| what | target | this run (median) | peer, same run | met? what limits it |",
           "|---|---|---:|---|---|"]
    for section, key, target, (op, bound), peer_key, how, limit in TARGETS:
        r = by.get((section, key))
        if r is None:
            continue
        unit = r["unit"].split(" (")[0]
        if how == "over_bare" and bare:
            read = r["median"] - bare["median"]
            figure = f"+{fmt(read)} ms ({fmt(r['median'])} ms, bare {fmt(bare['median'])} ms)"
        else:
            read = r["median"]
            figure = f"{fmt(read)} {unit}"
        if read != read:  # NaN: no figure, no verdict
            status = "—"
        elif (read >= bound) if op == ">=" else (read <= bound):
            status = "met"
        else:
            status = f"not met: {limit}" if limit else "not met"
        peer = by.get((section, peer_key)) if peer_key else None
        if peer is None:
            peer_text = "—"
        elif how == "over_bare" and bare:
            peer_text = f"{peer['label']}: +{fmt(peer['median'] - bare['median'])} ms"
        else:
            peer_text = f"{peer['label']}: {fmt(peer['median'])} {unit}"
        out.append(f"| {r['label']} | {target} | {figure} | {peer_text} | {status} |")
    head = (f"From `scripts/bench` on {meta.get('date', '?')} ({meta.get('machine', '?')}); "
            "every row and its peer in the same run. The whole table, the chart and what "
            "limits each figure: [Performance](docs/performance.md).")
    text = head + "\n\n" + "\n".join(out) + "\n"
    if profiles:
        text += ("\nWhere the time goes, in the same run (`perf record` of the profiling build; "
                 "[every part](docs/performance.md#summary-scriptsbench)):\n\n")
        for p in profiles:
            parts = [f"{part} {share} %" for part, share in p["parts"] if part != "other"][:4]
            text += f"- {p['title']}: " + ", ".join(parts) + "\n"
    return text + "\n![scripts/bench: medians with min–max whiskers, deckhand in blue](docs/bench.png)\n"


def short_function(name):
    """A function as perf names it, without its hash and its crates' paths."""
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    name = re.sub(r"\b[a-z_][a-z0-9_]*::", "", name)
    return name if len(name) <= 60 else name[:57] + "…"


def load_profiles(path):
    if not path or not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


def profiles_text(profiles):
    """The run's profiles: for each, where its samples went, part by part."""
    if not profiles:
        return ""
    out = ["**Where the time goes, in this run** (`scripts/bench --profiles`: `perf record` of "
           "the profiling build, release with symbols, on the same inputs, minutes after the "
           "rows above; the parts are [bench/profile.py](../bench/profile.py)'s, named as on "
           "this page):", ""]
    for p in profiles:
        line = f"- **{p['title']}**: {p['samples']:,} samples"
        if p.get("thread"):
            share = dict(p["threads"]).get(p["thread"])
            if share is not None:
                line += f", {share} % of the recording's"
        if p.get("note"):
            line += f" ({p['note']})"
        line += "; by part: " + ", ".join(f"{part} {share} %" for part, share in p["parts"] if share >= 1.0)
        line += ". Functions with the most: " + ", ".join(
            f"`{short_function(f)}` {share} %" for f, share in p["functions"][:5]) + "."
        if p.get("threads") and not p.get("thread"):
            line += " Threads: " + ", ".join(f"`{t}` {share} %" for t, share in p["threads"]) + "."
        out.append(line)
    return "\n".join(out) + "\n"


def replace_block(path, text):
    doc = open(path).read()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"report.py: {path} has no {BEGIN} … {END} block")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w") as f:
        f.write(head + BEGIN + "\n" + text + END + tail)


def chart(rows, out_dir, png):
    """One panel per (section, unit): horizontal bars at the median, whiskers min–max."""
    panels = []
    for r in rows:
        if not r["chart"] or r["median"] != r["median"]:
            continue
        key = (r["section"], r["unit"])
        for p in panels:
            if p["key"] == key:
                p["rows"].append(r)
                break
        else:
            panels.append({"key": key, "rows": [r]})
    if not panels:
        return False
    width, unit_px = 1500, 26
    heights = [len(p["rows"]) * unit_px + 120 for p in panels]
    total = sum(heights)
    gp = [f"set terminal pngcairo noenhanced size {width},{total} font 'DejaVu Sans,11' background '#ffffff'",
          f"set output '{png}'", "set datafile separator '\\t'", "set multiplot",
          "set style fill solid 0.85 border -1", "set grid xtics lc rgb '#dddddd'",
          "unset key", "set lmargin at screen 0.40", "set rmargin at screen 0.93",
          "set tics nomirror", "set border 3"]
    y_top = 1.0
    for i, (p, h) in enumerate(zip(panels, heights)):
        section, unit = p["key"]
        data = os.path.join(out_dir, f"chart-{i}.tsv")
        rs = p["rows"]
        with open(data, "w") as f:
            for r in rs:
                label = r["label"].replace("`", "").replace("**", "")
                if len(label) > 70:
                    label = label[:67] + "..."
                f.write(f"{label}\t{r['median']}\t{r['min']}\t{r['max']}\t{1 if r['deckhand'] else 2}\t{fmt(r['median'])}\n")
        lo = min(min(r["min"], r["median"]) for r in rs)
        hi = max(r["max"] for r in rs)
        log = lo > 0 and hi / lo > 30
        better = "higher is better" if rs[0]["better"] == "higher" else "lower is better"
        frac = h / total
        gp += [f"set origin 0,{y_top - frac:.5f}", f"set size 1,{frac:.5f}",
               "set tmargin 2.4", "set bmargin 2.6",
               f"set title '{SECTIONS.get(section, section)}: {unit} ({better})"
               + (", log scale" if log else "") + "' font ',13'",
               f"set yrange [{len(rs) - 0.4}:-0.6]", "set ytics scale 0", "set format x '%g'"]
        if log:
            floor = lo / 2
            gp += ["set logscale x", f"set xrange [{floor}:{hi * 4}]"]
            base = f"({floor})"
        else:
            gp += ["unset logscale x", f"set xrange [0:{hi * 1.18}]"]
            base = "(0)"
        gp.append(
            f"plot '{data}' using ({base}):0:({base}):2:($0-0.32):($0+0.32):5:ytic(1) with boxxyerror lc variable, "
            f"'' using 2:0:3:4 with xerrorbars lc rgb '#222222' pt 0 lw 1.2, "
            f"'' using 4:0:(' '.strcol(6)) with labels left font ',10' offset 0.3,0")
        y_top -= frac
    gp += ["unset multiplot"]
    # Colours of lc variable: 1 = deckhand, 2 = peers.
    gp.insert(1, "set linetype 1 lc rgb '#1f6fb4'")
    gp.insert(2, "set linetype 2 lc rgb '#b0b0b0'")
    script = os.path.join(out_dir, "chart.gp")
    with open(script, "w") as f:
        f.write("\n".join(gp) + "\n")
    subprocess.run(["gnuplot", script], check=True)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("out_dir")
    ap.add_argument("--meta")
    ap.add_argument("--peers")
    ap.add_argument("--profiles")
    ap.add_argument("--update-docs")
    ap.add_argument("--update-readme")
    a = ap.parse_args()
    rows = load(a.results)
    meta = json.load(open(a.meta)) if a.meta else {}
    png = os.path.join(a.out_dir, "chart.png")
    have_chart = chart(rows, a.out_dir, png)

    md = []
    md.append(f"Generated by `scripts/bench{(' ' + meta['args']) if meta.get('args') else ''}` "
              f"on {meta.get('date', '?')}: {meta.get('machine', '?')}. "
              f"Every row was measured in this one run, on the same inputs; "
              f"median, min and max over the runs shown. {meta.get('corpus', '')}")
    md.append("")
    md.append(table(rows))
    md.append("")
    if meta.get("elapsed"):
        md.append("Elapsed: " + ", ".join(f"{k} {v} s" for k, v in meta["elapsed"].items()) + ".")
        md.append("")
    if have_chart:
        md.append("![scripts/bench: medians with min–max whiskers, deckhand in blue](bench.png)")
        md.append("")
    profiles = load_profiles(a.profiles)
    if profiles:
        md.append(profiles_text(profiles))
    md.append("**Not measured in this run: quoted from `../shared/PEERS.md`.** Vector and "
              "Fluent Bit cannot be installed from the registries these machines reach; their "
              "figures were measured by others on a machine of this kind (2 cores, the same "
              "corpus generator, 200 MB). Do not compare them with the table above as if they "
              "were from the same run.")
    md.append("")
    md.append(peers_table(a.peers))
    text = "\n".join(md) + "\n"
    with open(os.path.join(a.out_dir, "results.md"), "w") as f:
        f.write(text)
    print(text)

    if a.update_readme:
        replace_block(a.update_readme, summary(rows, meta, profiles))
    if a.update_docs:
        replace_block(a.update_docs, text)
        if have_chart:
            import shutil
            shutil.copyfile(png, os.path.join(os.path.dirname(a.update_docs), "bench.png"))


if __name__ == "__main__":
    main()
