"""Fault injection for :class:`~pvdoi.testing.reposerver.RepoServer`: which requests fail, and how.

Tests register faults per path pattern with ``inject``; every request is logged and takes the
first matching fault that still has firings left. The server's handler carries the fault out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FAULT_KINDS = ("status", "reset", "truncate", "corrupt", "slow")


@dataclass
class _Fault:
    """One injected fault and its settings (see :meth:`_FaultInjection.inject`)."""

    pattern: re.Pattern
    kind: str
    times: int
    status: int
    retry_after: float | None
    nbytes: int | None
    delay: float


class _FaultInjection:
    """The fault-injection part of ``RepoServer``.

    The host class sets ``_lock``, ``_faults`` and the request logs ``requests`` and ``authorizations``.
    """

    def inject(self, path_pattern: str, kind: str, *, times: int = 1, status: int = 503,
               retry_after: float | None = None, nbytes: int | None = None, delay: float = 1.0) -> None:
        """Make the next ``times`` requests whose path matches ``path_pattern`` fail (-1: forever).

        Args:
            path_pattern: Regular expression searched in the request path (query included).
            kind: ``status`` (answer ``status``, with ``Retry-After`` when ``retry_after``),
                ``reset`` (headers and ``nbytes`` body bytes, then a TCP reset), ``truncate``
                (full Content-Length, ``nbytes`` bytes, then close), ``corrupt`` (bytes flipped,
                same length) or ``slow`` (sleep ``delay`` seconds, then answer normally).
            times: Number of firings; ``-1`` for ever.
            status: Status code of ``status`` faults.
            retry_after: Seconds sent in ``Retry-After`` by ``status`` faults.
            nbytes: Body bytes sent before ``reset``/``truncate`` (default: half the body).
            delay: Seconds a ``slow`` fault waits.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; allowed: {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._faults.append(_Fault(re.compile(path_pattern), kind, times, status, retry_after, nbytes, delay))

    def clear_faults(self) -> None:
        """Forget every injected fault."""
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str, authorization: str | None = None) -> _Fault | None:
        with self._lock:
            self.requests.append((method, path))
            self.authorizations.append((path, authorization))
            for fault in self._faults:
                if fault.times != 0 and fault.pattern.search(path):
                    fault.times -= fault.times > 0
                    return fault
        return None
