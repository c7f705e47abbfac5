#!/usr/bin/python3
"""Parses an OpenMetrics exposition with the Prometheus Python client's strict
OpenMetrics parser (Debian's python3-prometheus-client): exits 1 naming the
error if it is not valid OpenMetrics 1.0, else prints one line per exemplar:
"<sample name> <le> <trace_id> <value>".

  tests/e2e/openmetrics_check.py FILE
"""

import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        text = f.read()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError (and others) on bad input
        sys.exit(f"not valid OpenMetrics: {e}")
    if not families:
        sys.exit("no metric families")
    for family in families:
        for sample in family.samples:
            if sample.exemplar is not None:
                print(sample.name, sample.labels.get("le", ""),
                      sample.exemplar.labels.get("trace_id", ""), sample.exemplar.value)


if __name__ == "__main__":
    main()
