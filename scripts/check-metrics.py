#!/usr/bin/python3
"""check-metrics.py FILE - parses a metrics file audsync wrote with the
Prometheus client's text parser (Debian: python3-prometheus-client), as
node_exporter's textfile collector would, and checks what operators
alert on is there: a HELP and a TYPE for every metric, _seconds and
_total where the unit or the kind says so, per sync and per destination
series, and audsync_build_info. Exits 1, saying why, when not."""
import sys

from prometheus_client.parser import text_string_to_metric_families

REQUIRED = {
    "audsync_build_info": "gauge",
    "audsync_last_run_timestamp_seconds": "gauge",
    "audsync_last_success_timestamp_seconds": "gauge",
    "audsync_last_run_duration_seconds": "gauge",
    "audsync_last_run_success": "gauge",
    "audsync_last_run_members": "gauge",
    "audsync_last_run_entered": "gauge",
    "audsync_last_run_exited": "gauge",
    "audsync_last_run_calls": "gauge",
    "audsync_queued_records": "gauge",
    "audsync_dead_letters": "gauge",
    "audsync_delivery_failures": "counter",  # samples: ..._total
}


def main(path):
    text = open(path, encoding="utf-8").read()
    problems = []
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, fam in families.items():
        if not fam.documentation:
            problems.append(f"{name}: no HELP")
        if fam.type == "unknown":
            problems.append(f"{name}: no TYPE")
        if fam.type == "counter" and not all(
                s.name.endswith("_total") for s in fam.samples):
            problems.append(f"{name}: a counter without _total")
    for name, kind in REQUIRED.items():
        fam = families.get(name)
        if fam is None:
            problems.append(f"{name}: missing")
        elif fam.type != kind:
            problems.append(f"{name}: {fam.type}, not {kind}")
        elif not fam.samples:
            problems.append(f"{name}: no sample")
    for p in problems:
        print(f"check-metrics: {p}", file=sys.stderr)
    if not problems:
        print(f"check-metrics: {path}: {len(families)} metrics parse")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
