"""Run every benchmark: ``python -m bench [name ...]``; one with its options: ``python -m bench live --db sqlite``.

``burst`` (1,000 failing tries on Celery, about half an hour) runs only when named.

Each benchmark of several runs in a fresh interpreter: Airflow reads ``AIRFLOW_HOME`` once per
process, so a benchmark that isolates its own Airflow (events) cannot follow one that has
already imported Airflow under another home (imports, delivery).
"""

from __future__ import annotations

import subprocess
import sys

from bench import burst, delivery, events, imports, ledger, live, report, view

BENCHMARKS = {
    "imports": imports.main, "delivery": delivery.main, "events": events.main, "report": report.main, "view": view.main,
    "ledger": ledger.main, "live": live.main,
}
ON_REQUEST = {"burst": burst.main}

if __name__ == "__main__":
    names = sys.argv[1:] or list(BENCHMARKS)
    if len(names) == 1 or names[1].startswith("-"):  # one benchmark, and its options: python -m bench live --db sqlite
        sys.argv[1:] = names[1:]
        {**BENCHMARKS, **ON_REQUEST}[names[0]]()
    else:
        for name in names:
            subprocess.run([sys.executable, "-m", "bench", name], check=True)
