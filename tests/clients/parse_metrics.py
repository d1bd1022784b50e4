"""Parses a /metrics page (stdin) with prometheus_client's text parser, as a Prometheus scraper would, and prints
its samples as JSON: {"types": {family: type}, "samples": {"name{label=value,...}": number}} (labels sorted).
A page the parser rejects exits non-zero with the parser's error.

usage: parse_metrics.py < page.txt
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

types, samples = {}, {}
for family in text_string_to_metric_families(sys.stdin.read()):
    types[family.name] = family.type
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        key = f"{s.name}{{{labels}}}" if labels else s.name
        if key in samples:
            sys.exit(f"duplicate sample {key}")
        samples[key] = s.value
json.dump({"types": types, "samples": samples}, sys.stdout)
