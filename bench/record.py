#!/usr/bin/env python3
"""Appends one measured row to the results file of scripts/bench ($BENCH_JSON, JSON lines).

Usage: record.py --section S --key K --label TEXT --unit U --better lower|higher
                 [--note TEXT] [--no-chart] [--deckhand]
                 (--values V [V ...] | --hyperfine FILE [--scale F])

Every sample of the row is kept (bench/report.py takes the median, min and max):
  --values     the samples themselves, in UNIT
  --hyperfine  the "times" of a `hyperfine --export-json` file (seconds), times F
               (--scale 1000 for milliseconds)
--deckhand marks deckhand's own rows (drawn in their own colour); --no-chart keeps a row
out of the chart (it stays in the table). Does nothing when $BENCH_JSON is not set, so
the per-crate bench scripts run alone as before.
"""
import argparse
import json
import os


def main():
    p = argparse.ArgumentParser()
    for name in ("section", "key", "label", "unit"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--better", choices=("lower", "higher"), required=True)
    p.add_argument("--note", default="")
    p.add_argument("--no-chart", action="store_true")
    p.add_argument("--deckhand", action="store_true")
    p.add_argument("--values", nargs="+", type=float)
    p.add_argument("--hyperfine")
    p.add_argument("--scale", type=float, default=1.0)
    a = p.parse_args()
    out = os.environ.get("BENCH_JSON")
    if not out:
        return
    if a.hyperfine:
        with open(a.hyperfine) as f:
            samples = [t * a.scale for t in json.load(f)["results"][0]["times"]]
    else:
        samples = a.values or []
    row = {"section": a.section, "key": a.key, "label": a.label, "unit": a.unit,
           "better": a.better, "note": a.note, "chart": not a.no_chart,
           "deckhand": a.deckhand, "samples": samples}
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
