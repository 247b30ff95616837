"""What the benchmarks on real deployments (``live``, ``burst``) change in the system-test harness's deployments."""

from __future__ import annotations

import shutil
from collections.abc import Collection
from pathlib import Path


class OwnDagFile:
    """
    Mixed in before a harness deployment (``tests/system/deployments.py``): its DAG processor reads
    a folder of the benchmark's own holding only :attr:`dag_file` (the harness still copies its DAG
    files into ``dags_folder`` as it starts; nothing reads them there), and the harness's
    deployment-wide hooks file (an ``on_success`` hook on every DAG) is left out. The deployment is
    ready once :attr:`dag_ids` are parsed.
    """

    dag_file: Path
    dag_ids: Collection[str]
    home: Path

    @property
    def own_dags(self) -> Path:
        return self.home / "bench-dags"

    def environment(self) -> dict[str, str]:
        env = super().environment()  # type: ignore[misc]
        env.pop("AIRFLOW__ORDO_HOOKS__HOOKS_FILE", None)
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(self.own_dags)
        return env

    def start(self) -> None:
        self.own_dags.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.dag_file, self.own_dags / self.dag_file.name)
        super().start()  # type: ignore[misc]

    def _dag_files_parsed(self) -> bool:
        errors = self.get("/api/v2/importErrors", params={"limit": 100})["import_errors"]  # type: ignore[attr-defined]
        ours = [e for e in errors if Path(e.get("filename") or "").name == self.dag_file.name]
        if ours:
            raise RuntimeError(f"{self.dag_file.name} failed to import:\n" + "\n".join(e["stack_trace"] for e in ours))
        parsed = {d["dag_id"] for d in self.get("/api/v2/dags", params={"limit": 1000})["dags"]}  # type: ignore[attr-defined]
        return set(self.dag_ids) <= parsed
