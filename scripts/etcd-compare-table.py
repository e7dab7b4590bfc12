#!/usr/bin/env python3
"""Prints the side-by-side table of scripts/etcd-compare.sh from its results file.

Each line of the file is one `summary` line of `caravan bench api` or `caravan bench watch`
prefixed with the system and the member count:
    system=etcd members=1 op=create rate=1234.5 p50_ms=1.00 p99_ms=9.00 errors=0
"""

import sys


def parse(path):
    rows = {}
    with open(path) as f:
        for line in f:
            fields = dict(kv.split("=", 1) for kv in line.split())
            key = (fields["members"], fields["op"])
            rows.setdefault(key, {})[fields["system"]] = fields
    return rows


def ratio(a, b):
    return f"{a / b:.2f}" if b else "-"


def main(path):
    rows = parse(path)
    print("| members | operation | Caravan | etcd | Caravan / etcd |")
    print("| --- | --- | --- | --- | --- |")
    for (members, op), by in sorted(rows.items()):
        c, e = by.get("caravan"), by.get("etcd")
        if not c or not e:
            continue
        if op == "watch":
            print(
                f"| {members} | watch p99 delivery, {c['watchers']} watchers "
                f"| {c['p99_ms']} ms | {e['p99_ms']} ms "
                f"| {ratio(float(c['p99_ms']), float(e['p99_ms']))} |"
            )
            print(
                f"| {members} | server RSS per open watch "
                f"| {c['rss_per_watcher_kib']} KiB | {e['rss_per_watcher_kib']} KiB "
                f"| {ratio(float(c['rss_per_watcher_kib']), float(e['rss_per_watcher_kib']))} |"
            )
        else:
            print(
                f"| {members} | {op}/s (p50 / p99 ms) "
                f"| {float(c['rate']):,.0f} ({c['p50_ms']} / {c['p99_ms']}) "
                f"| {float(e['rate']):,.0f} ({e['p50_ms']} / {e['p99_ms']}) "
                f"| **{ratio(float(c['rate']), float(e['rate']))}** |"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results")
