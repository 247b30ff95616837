"""Run every benchmark: ``python -m bench [name ...]``."""

from __future__ import annotations

import sys

from bench import delivery, events, imports, report

BENCHMARKS = {"imports": imports.main, "delivery": delivery.main, "events": events.main, "report": report.main}

if __name__ == "__main__":
    for name in sys.argv[1:] or list(BENCHMARKS):
        BENCHMARKS[name]()
