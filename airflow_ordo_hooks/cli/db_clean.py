"""What ``airflow ordo-hooks db-clean`` does: delete the ledger's settled deliveries older than a time, as ``airflow db clean`` does Airflow's rows.

Only settled deliveries (``delivered``, ``gone``, ``failed``) last updated before
``--clean-before-timestamp`` are deleted, with their attempts, in batches of their own
transaction (:mod:`~airflow_ordo_hooks.server.retention`); pending ones are kept however old. It
reads and writes the ledger's tables in Airflow's metadata database: run it where ``airflow db``
commands work. The API server prunes on its own by ``[ordo_hooks] retention_days``; this command is
for a deployment that keeps every delivery, or a backlog to clear at once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow.utils.cli import suppress_logs_and_warning


def _when(timestamp: datetime) -> datetime:
    """``--clean-before-timestamp`` (aware, in Airflow's default time zone when none was given) in UTC, as the ledger stores times."""
    return datetime.fromtimestamp(timestamp.timestamp(), timezone.utc)


def _confirm(total: int, before: datetime) -> None:
    """Ask as ``airflow db clean`` asks; ``SystemExit`` unless the answer is ``delete rows``."""
    print(
        f"You have requested that we delete {total} settled deliveries last updated before {before.isoformat()}, "
        "with their attempts.\nThis is irreversible.  Consider a dry run with option --dry-run.\n"
        "Enter 'delete rows' (without quotes) to proceed."
    )
    if input().strip() != "delete rows":
        raise SystemExit("User did not confirm; exiting.")


@suppress_logs_and_warning
def db_clean(args: Any) -> None:
    """
    ``airflow ordo-hooks db-clean``: count the settled deliveries last updated before
    ``--clean-before-timestamp`` per state, and (unless ``--dry-run``) delete them with their
    attempts, after a confirmation unless ``--yes``.
    """
    from airflow.utils.session import create_session

    from airflow_ordo_hooks.server import retention

    before = _when(args.clean_before_timestamp)
    with create_session(scoped=False) as session:
        counts = retention.count(session, before)
    total = sum(counts.values())
    print(f"Settled deliveries last updated before {before.isoformat()}, with their attempts:")
    for state, number in counts.items():
        print(f"  {state}: {number}")
    if args.dry_run:
        print(f"Dry run: {total} deliveries would be deleted; nothing was")
        return
    if not total:
        print("Nothing to delete")
        return
    if not args.yes:
        _confirm(total, before)
    batches = []

    def each(deleted: int) -> None:
        batches.append(deleted)
        if args.verbose:
            print(f"  batch {len(batches)}: {deleted} deleted")

    deleted = retention.prune(before, each=each)
    print(f"Deleted {deleted} settled deliveries, with their attempts, in {len(batches)} batch(es) of at most {retention.BATCH}")
