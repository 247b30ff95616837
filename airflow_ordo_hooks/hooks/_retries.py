"""Trying a request again: when another attempt may help, how long to wait for it, and when to give up.

Waits back off exponentially with jitter (tenacity's ``wait_exponential_jitter``, bounded by the
policy), or last what the server's ``Retry-After`` asks; no attempt is started that the deadline
would cut. tenacity is imported only when a first attempt has failed and may be retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from airflow_ordo_hooks.hooks._policy import DeliveryPolicy, _Outcome

log = logging.getLogger("airflow_ordo_hooks.hooks.webhook")  # one logger name for every delivery line


def _with_retries(
    attempt: Callable[[], _Outcome],
    policy: DeliveryPolicy,
    deadline: float,
    what: str,
    should_retry: Callable[[_Outcome], bool] = lambda outcome: outcome.retryable,
) -> _Outcome:
    """
    Call ``attempt`` and again while ``should_retry`` says so: backoff with jitter or the server's
    Retry-After, at most ``policy.max_attempts`` calls. An attempt is not started unless the time
    left after its wait is at least what the last attempt took: one that cannot finish would be cut
    by the deadline, and its receiver would get half a request.
    """
    attempts = _Attempts(attempt, deadline)
    outcome = attempts.make()
    if not should_retry(outcome) or policy.max_attempts <= 1 or attempts.would_end_late(0.0):
        return outcome  # nothing more to do: tenacity is not even imported
    backoff = _Backoff(policy)
    while True:
        wait = outcome.retry_after if outcome.retry_after is not None else backoff.after(attempts.made)
        if attempts.made >= policy.max_attempts or attempts.would_end_late(wait):
            return outcome  # an attempt that would end past the deadline is not waited for: give up now
        log.info("%s: attempt %d failed (%s); retrying in %.1f s", what, attempts.made, outcome.error, wait)
        time.sleep(wait)
        outcome = attempts.make()
        if not should_retry(outcome):
            return outcome


class _Attempts:
    """The attempts made of one request: how many, and how long the last took (the next may take as long)."""

    def __init__(self, attempt: Callable[[], _Outcome], deadline: float) -> None:
        self._attempt = attempt
        self._deadline = deadline
        self.made = 0
        self._took = 0.0

    def make(self) -> _Outcome:
        """One more attempt, timed."""
        started = time.monotonic()
        self.made += 1
        try:
            return self._attempt()
        finally:
            self._took = time.monotonic() - started

    def would_end_late(self, wait: float) -> bool:
        """Whether another attempt, after ``wait`` seconds and as long as the last, would end at the deadline or past it."""
        return time.monotonic() + wait + self._took >= self._deadline


class _Backoff:
    """The policy's waits between attempts, as tenacity schedules them: doubling, with jitter, bounded."""

    def __init__(self, policy: DeliveryPolicy) -> None:
        import tenacity

        self._wait = tenacity.wait_exponential_jitter(
            multiplier=policy.backoff_initial, max=policy.backoff_max, jitter=policy.backoff_jitter
        )
        self._state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # what the wait reads

    def after(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th attempt failed."""
        self._state.attempt_number = attempts
        return self._wait(self._state)
