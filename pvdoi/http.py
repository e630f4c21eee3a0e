"""HTTP with urllib3's retry machinery: JSON for repository APIs, streaming downloads.

Transient failures (429, 5xx, connection errors, truncated bodies) are retried with exponential
backoff that honours ``Retry-After``; the same :class:`urllib3.util.Retry` object counts retries of
errors raised while the body streams, so one budget covers the whole request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
import urllib3
from urllib3.exceptions import HTTPError as Urllib3HTTPError
from urllib3.exceptions import MaxRetryError
from urllib3.util import Retry, Timeout

from pvdoi import events
from pvdoi.errors import DownloadError, RepositoryError, TransientDownloadError
from pvdoi.settings import Settings, token

log = logging.getLogger("pvdoi.http")

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
CHUNK = 1 << 20


class _Reported(Retry):
    """urllib3's ``Retry`` that tells :mod:`pvdoi.events` each time it retries an error for a dataset."""

    dataset_id: str | None = None

    def new(self, **kw) -> _Reported:
        retry = super().new(**kw)
        retry.dataset_id = self.dataset_id
        return retry

    def increment(self, method=None, url=None, response=None, error=None, *args, **kwargs) -> Retry:
        retry = super().increment(method, url, response, error, *args, **kwargs)  # raises when the budget is spent
        if self.dataset_id and (error is not None or (response is not None and response.status in RETRY_STATUS)):
            events.emit(self.dataset_id, "retries", 1)
        return retry


def make_retry(settings: Settings, dataset_id: str | None = None) -> Retry:
    """The retry policy for one request (its retries reported as ``dataset_id``'s when one is given)."""
    retry = _Reported(
        total=settings.http_retries,
        connect=settings.http_retries,
        read=settings.http_retries,
        status=settings.http_retries,
        backoff_factor=settings.http_backoff_factor,
        backoff_max=settings.http_backoff_max,
        backoff_jitter=0.1,
        status_forcelist=RETRY_STATUS,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=True,
        raise_on_redirect=True,
    )
    retry.dataset_id = dataset_id
    return retry


class Http:
    """A pool manager plus the product's retry policy and per-host tokens."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.pool = urllib3.PoolManager(
            timeout=Timeout(connect=10.0, read=settings.http_timeout_s),
            headers={"User-Agent": "pvdoi/0.1 (+https://github.com/)"},
        )
        self._tokens = _scoped_tokens(settings)

    def headers_for(self, url: str) -> dict[str, str]:
        """Authorization header for URLs under the token's own repository base URL only (never elsewhere)."""
        for base, token in self._tokens:
            if url == base or url.startswith(base + "/"):
                return {"Authorization": f"Bearer {token}"}
        return {}

    def get_json(self, url: str, *, dataset_id: str | None = None, retries: Retry | None = None,
                 timeout: Timeout | None = None) -> object:
        """GET a JSON document; 4xx is a :class:`RepositoryError`, exhausted retries transient.

        ``retries`` and ``timeout`` replace the settings' policy for this request (a quick, advisory look).
        """
        extra = {"timeout": timeout} if timeout is not None else {}
        try:
            resp = self.pool.request("GET", url, headers=self.headers_for(url),
                                     retries=retries or make_retry(self.settings, dataset_id), **extra)
        except MaxRetryError as exc:
            raise TransientDownloadError(f"GET {url} failed after retries: {exc.reason}", dataset_id=dataset_id) from None
        except Urllib3HTTPError as exc:
            raise TransientDownloadError(f"GET {url} failed: {exc}", dataset_id=dataset_id) from None
        if resp.status >= 400:
            raise RepositoryError(f"GET {url} answered HTTP {resp.status}: {resp.data[:200]!r}", dataset_id=dataset_id)
        try:
            return json.loads(resp.data)
        except json.JSONDecodeError as exc:
            raise RepositoryError(f"GET {url} did not return JSON: {exc}", dataset_id=dataset_id) from None

    @contextmanager
    def stream(self, url: str, *, dataset_id: str | None, file: str | None,
               on_retry: Callable[[str], None] | None = None) -> Iterator[Callable[[], Iterator[bytes]]]:
        """Yield a function that iterates the body in chunks, restarting the request on body errors.

        The caller's iteration starts over from the first byte after a restart (``on_retry`` is
        called so the caller can reset its state); the urllib3 ``Retry`` budget and its backoff
        apply to the restarts.
        """
        retry = make_retry(self.settings, dataset_id)

        def chunks() -> Iterator[bytes]:
            nonlocal retry
            while True:
                resp = self._open(url, retry, dataset_id=dataset_id, file=file)
                try:
                    yield from resp.stream(CHUNK, decode_content=False)
                    return
                except (Urllib3HTTPError, OSError) as exc:
                    try:
                        retry = retry.increment("GET", url, error=exc)
                    except MaxRetryError:
                        raise TransientDownloadError(
                            f"download of {url} kept failing while streaming: {exc}", dataset_id=dataset_id, file=file
                        ) from None
                    log.warning("retrying %s after %s (%s)", url, type(exc).__name__, exc)
                    if on_retry:
                        on_retry(str(exc))
                    retry.sleep()
                finally:
                    resp.release_conn()

        yield chunks

    def _open(self, url: str, retry: Retry, *, dataset_id: str | None, file: str | None):
        try:
            resp = self.pool.request(
                "GET", url, headers=self.headers_for(url), retries=retry, preload_content=False,
                enforce_content_length=True,
            )
        except MaxRetryError as exc:
            raise TransientDownloadError(f"GET {url} failed after retries: {exc.reason}", dataset_id=dataset_id,
                                         file=file) from None
        except Urllib3HTTPError as exc:
            raise TransientDownloadError(f"GET {url} failed: {exc}", dataset_id=dataset_id, file=file) from None
        if resp.status >= 400:
            resp.release_conn()
            raise DownloadError(f"GET {url} answered HTTP {resp.status}", dataset_id=dataset_id, file=file)
        return resp


def _scoped_tokens(settings: Settings) -> list[tuple[str, str]]:
    """(base URL, token) pairs; a URL gets a token only when it lies under that repository's base URL."""
    github, zenodo, figshare = (token(settings, r) for r in ("github", "zenodo", "figshare"))
    pairs = [
        (settings.github_api_url, github),
        (settings.github_raw_url, github),
        (settings.zenodo_url, zenodo),
        (settings.figshare_api_url, figshare),
    ]
    return [(url.rstrip("/"), secret) for url, secret in pairs if secret]
