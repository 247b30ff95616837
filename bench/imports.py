"""Import cost of airflow_ordo_hooks on top of ``import airflow.sdk``, as a DAG file pays it at parse time.

Each sample is a fresh interpreter that imports ``airflow.sdk`` (the baseline), then our package,
then what a DAG file using ``attach_hooks`` pulls in, with compiled bytecode cached as a DAG
processor has it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

SAMPLES = 15
_PROBE = """
import json, sys, time
t0 = time.perf_counter(); import airflow.sdk
t1 = time.perf_counter()
# Airflow's provider discovery may already have imported the package: measure it afresh.
for name in [m for m in sys.modules if m.split(".")[0] == "airflow_ordo_hooks"]:
    del sys.modules[name]
t2 = time.perf_counter(); import airflow_ordo_hooks
t3 = time.perf_counter(); airflow_ordo_hooks.attach_hooks; airflow_ordo_hooks.JobEventWebhookNotifier
t4 = time.perf_counter()
print(json.dumps([t1 - t0, t3 - t2, t4 - t3]))
"""


def main() -> None:
    # A DAG processor parses with compiled bytecode cached: allow it to be written, and warm it up
    # first, whatever the calling shell says (PYTHONDONTWRITEBYTECODE would measure compiling too).
    env = {**os.environ, "AIRFLOW_HOME": tempfile.mkdtemp(prefix="ordo-bench-")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, env=env, check=True)
    samples = []
    for _ in range(SAMPLES):
        out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, check=True).stdout
        samples.append(json.loads(out.strip().splitlines()[-1]))
    sdk, package, api = (statistics.median(s[i] for s in samples) * 1000 for i in range(3))
    print(f"imports (median of {SAMPLES} fresh interpreters)")
    print(f"  import airflow.sdk (baseline)             {sdk:8.1f} ms")
    print(f"  + import airflow_ordo_hooks               {package:8.3f} ms  ({package / sdk:.5f} x baseline)")
    print(f"  + attach_hooks and the notifiers          {api:8.2f} ms  ({api / sdk:.4f} x baseline)")
