"""The retry policy of the `transaction(fn)` helpers (Client, AsyncClient):
which errors rerun the whole transaction, how many times, and how long to
wait between runs (jittered exponential back-off)."""
import random
import uuid

import grpc

# Errors under which nothing of the transaction survives and running all of
# it again is the remedy: ABORTED (deadlock 1213, expiry, the database lost),
# a lock wait timeout (1205, whatever the gateway answers it with), and the
# gateway's overload refusals, under which nothing ran.
_RETRY_ERRNOS = {1205, 1213}
_RETRY_REASONS = {"TOO_MANY_TRANSACTIONS", "POOL_EXHAUSTED", "TOO_MANY_REQUESTS"}


class RetryPolicy:
    """How `transaction(fn)` reruns a transaction that failed retryably.

    attempts: how many times fn runs at most, the first run included
    (default 25); then the last error is raised. backoff: the wait bound
    before the second run, in seconds (0.01); it doubles after each failed
    run, up to max_backoff (1.0). The wait is "equal jitter": half the bound
    plus a random part of the other half, so that transactions that collided
    spread apart and each wait grows (worst case with the defaults: about
    18 s of waiting over 25 runs)."""

    def __init__(self, attempts=25, backoff=0.01, max_backoff=1.0, rng=None):
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._random = rng or random.Random()

    def delay(self, failed_runs):
        """Seconds to wait after `failed_runs` (1, 2, ...) failed runs."""
        bound = min(self.max_backoff, self.backoff * 2 ** min(failed_runs - 1, 32))
        return bound / 2 + self._random.uniform(0, bound / 2)

    @staticmethod
    def retryable(error):
        """Whether error (a SqlgateError) calls for running the whole transaction again."""
        code = getattr(error, "code", None)
        if code == grpc.StatusCode.ABORTED:
            return True
        if getattr(error, "errno", None) in _RETRY_ERRNOS:
            return True
        return code == grpc.StatusCode.RESOURCE_EXHAUSTED and getattr(error, "reason", None) in _RETRY_REASONS


# What a commit with a request id may fail with while its outcome is
# unknown to the client (the answer was lost: the database connection or the
# gateway failed during COMMIT): rerunning with the same request id is safe,
# because the gateway answers the recorded outcome if it did commit.
_UNANSWERED_COMMIT = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}


def unanswered_commit(error):
    """Whether a commit failed without saying whether it committed."""
    return getattr(error, "code", None) in _UNANSWERED_COMMIT


def new_request_id():
    """A fresh request id (a random UUID, as hex)."""
    return uuid.uuid4().hex


DEFAULT_POLICY = RetryPolicy()


def policy_for(retries, policy):
    """The policy of a transaction() call: `policy`, or the default one with
    `retries` reruns (the older keyword), or the default."""
    if policy is not None:
        return policy
    if retries is not None:
        return RetryPolicy(attempts=retries + 1)
    return DEFAULT_POLICY
