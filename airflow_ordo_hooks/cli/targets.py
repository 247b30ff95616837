"""What ``airflow ordo-hooks targets`` does: each webhook target's health, the worst first.

Like ``deliveries``, it reads the delivery ledger in Airflow's metadata database (run it where
``airflow db`` commands work), every DAG's deliveries alike. Its numbers are
:func:`airflow_ordo_hooks.server.health.targets`', the same the API's ``GET /targets`` and the
Webhooks view's Targets page show.
"""

from __future__ import annotations

import sys
from typing import Any

from airflow.utils.cli import suppress_logs_and_warning

from airflow_ordo_hooks.cli.commands import _print


def _row(target: dict[str, Any]) -> dict[str, Any]:
    """A target as one line of the table."""
    more = target["dag_count"] - len(target["dag_ids"])
    attempts = target["attempts_24h"]
    return {
        "target": target["target_masked"],
        "fingerprint": target["target_fingerprint"] or "",
        "dags": ", ".join(target["dag_ids"]) + (f" and {more} more" if more else ""),
        "failing": "yes" if target["failing"] else "",
        "last_success": (target["last_success_at"] or "")[:19],
        "last_failure": (target["last_failure_at"] or "")[:19],
        "last_error": (target["last_error"] or "")[:40],
        "failed_24h": f"{target['failed_24h']}/{attempts} ({target['failure_rate_24h']:.0%})" if attempts else "",
        "pending": target["pending"],
    }


@suppress_logs_and_warning
def targets(args: Any) -> None:
    """``airflow ordo-hooks targets``: each target's health, the worst first; whole as JSON or YAML."""
    from airflow.utils.session import create_session

    from airflow_ordo_hooks.server import health

    if not 1 <= args.limit <= health.MAX_TARGETS:
        raise SystemExit(f"--limit: expected a number of targets from 1 to {health.MAX_TARGETS}, got {args.limit}")
    with create_session(scoped=False) as session:
        found, total = health.targets(session, dag_id=args.dag_id, limit=args.limit)
    _print(found, args.output, _row)
    if total > len(found):  # said aside, so that JSON and YAML stay whole
        print(f"The {len(found)} worst of {total} targets", file=sys.stderr)
