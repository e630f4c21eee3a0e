"""Whether a dataset's repository publishes a newer version than the manifest pins (advisory: never raises).

One quick request per dataset (two for a GitHub commit pin), one retry, short timeouts, no waiting on
``Retry-After``, asked while a run's datasets ingest (:class:`UpstreamCheck`): the check must never hold up or
fail a run. It never changes the manifest; the message names the field to change.

- Zenodo: ``/api/records/{pinned}/versions/latest`` redirects to the concept's latest record; newer when
  its id differs from ``repository.record_id``.
- figshare: ``/v2/articles/{id}/versions``; newer when the highest version is above ``repository.version``
  (an entry without a version follows the latest).
- GitHub: a branch (or tag) ``ref`` follows upstream, so the question is whether the newest commit touching
  ``repository.path`` (the whole repository when empty) came after the last successful run; its committer
  date is compared, so a commit dated before that run but merged after it is missed. A 40-hex commit
  ``ref`` is frozen: newer when the newest commit touching the path on the default branch is another one.
- Plain URLs have no versions: unknown.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Literal
from urllib.parse import quote

from urllib3.util import Retry, Timeout

from pvdoi.http import RETRY_STATUS, Http
from pvdoi.manifest import DatasetSpec, FigshareRepository, GithubRepository, ZenodoRepository, load_manifest
from pvdoi.settings import Settings, get_settings

Status = Literal["current", "newer", "unknown"]
TIMEOUT = Timeout(connect=5.0, read=10.0)
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class Upstream:
    """One dataset's upstream check: ``status`` is current, newer or unknown; ``message`` says what to do."""

    id: str
    status: Status
    pinned: str | None
    latest: str | None
    message: str

    def as_dict(self) -> dict:
        """The check as plain JSON values."""
        return asdict(self)


def quick_retry() -> Retry:
    """One retry, a short backoff, two redirects (Zenodo's latest-version redirect), no ``Retry-After`` waits."""
    return Retry(total=3, connect=1, read=1, status=1, redirect=2, backoff_factor=0.2, backoff_max=1.0,
                 status_forcelist=RETRY_STATUS, allowed_methods=frozenset({"GET"}),
                 respect_retry_after_header=False, raise_on_status=True, raise_on_redirect=True)


def look_up(spec: DatasetSpec, http: Http, urls: dict[str, str]) -> Callable[[str | datetime | None], Upstream]:
    """Ask the dataset's repository for its newest version now; the check, given the dataset's last successful run
    (only a followed GitHub branch needs it). Never raises: any failure is an ``unknown`` naming the reason."""
    repo = spec.repository
    try:
        if isinstance(repo, GithubRepository):
            judge = _github(spec, repo, http, urls["github_api"])
        else:
            found = (_zenodo(spec, repo, http, urls["zenodo"]) if isinstance(repo, ZenodoRepository) else
                     _figshare(spec, repo, http, urls["figshare"]) if isinstance(repo, FigshareRepository) else
                     Upstream(spec.id, "unknown", None, None, "plain URLs publish no versions"))
            judge = lambda since: found  # noqa: E731
    except Exception as exc:  # noqa: BLE001  (advisory: whatever went wrong becomes "unknown")
        failed = _failed(spec, exc)
        judge = lambda since: failed  # noqa: E731

    def check(last_success: str | datetime | None) -> Upstream:
        try:
            return judge(last_success)
        except Exception as exc:  # noqa: BLE001
            return _failed(spec, exc)
    return check


def check_dataset(spec: DatasetSpec, http: Http, urls: dict[str, str], *,
                  last_success: str | datetime | None = None) -> Upstream:
    """Ask the dataset's repository for its newest version; any failure is an ``unknown`` naming the reason."""
    return look_up(spec, http, urls)(last_success)


def check_upstream(specs: list[DatasetSpec], settings: Settings | None = None, *,
                   last_success: dict[str, str | None] | None = None) -> list[Upstream]:
    """Every dataset's check, side by side, in the order given; a repository's failure is its ``unknown``."""
    settings = settings or get_settings()
    urls, last = settings.repository_urls, last_success or {}
    if not specs:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(specs)), thread_name_prefix="pvdoi-upstream") as pool:
        return list(pool.map(lambda s: check_dataset(s, Http(settings), urls, last_success=last.get(s.id)), specs))


class UpstreamCheck:
    """The datasets' repositories asked in the background from now on (a run asks while its datasets ingest, one
    daemon thread each: a run that ends early never waits for them); :meth:`notes` gives the checks."""

    def __init__(self, dataset_ids: list[str], manifest_path: str, settings: Settings | None = None) -> None:
        self.ids, self.error, self._found = list(dataset_ids), None, {}
        try:
            manifest, settings = load_manifest(manifest_path), settings or get_settings()
            self._threads = [threading.Thread(target=self._look_up, args=(manifest.get(d), settings), daemon=True,
                                              name=f"pvdoi-upstream-{d}") for d in self.ids if d in manifest.ids]
            for thread in self._threads:
                thread.start()
        except Exception as exc:  # noqa: BLE001  (advisory)
            self.error = exc

    def _look_up(self, spec: DatasetSpec, settings: Settings) -> None:
        self._found[spec.id] = look_up(spec, Http(settings), settings.repository_urls)

    def notes(self, last_success: dict[str, str | None]) -> dict[str, str]:
        """``status: message`` per dataset, for a run's status artifact, once every answer is in; every dataset
        ``unknown`` (with the reason) when the check could not run at all. Never raises."""
        if self.error is not None:
            return {d: f"unknown: check failed: {self.error}" for d in self.ids}
        for thread in self._threads:
            thread.join()
        checks = {d: check(last_success.get(d)) for d, check in self._found.items()}
        return {d: f"{checks[d].status}: {checks[d].message}" if d in checks else "unknown: not in the manifest"
                for d in self.ids}


def upstream_notes(dataset_ids: list[str], manifest_path: str, last_success: dict[str, str | None],
                   settings: Settings | None = None) -> dict[str, str]:
    """:meth:`UpstreamCheck.notes` of a check started now."""
    return UpstreamCheck(dataset_ids, manifest_path, settings).notes(last_success)


def _failed(spec: DatasetSpec, exc: Exception) -> Upstream:
    reason = str(exc).replace(f"[dataset {spec.id!r}] ", "")
    return Upstream(spec.id, "unknown", _pinned(spec), None, f"check failed: {reason}")


def _get(http: Http, url: str, spec: DatasetSpec) -> object:
    return http.get_json(url, dataset_id=spec.id, retries=quick_retry(), timeout=TIMEOUT)


def _unexpected(url: str, what: str) -> ValueError:
    return ValueError(f"{url} returned an unexpected document: {what}")


def _pinned(spec: DatasetSpec) -> str | None:
    repo = spec.repository
    if isinstance(repo, ZenodoRepository):
        return str(repo.record_id)
    if isinstance(repo, FigshareRepository):
        return f"v{repo.version}" if repo.version else "latest"
    return repo.ref if isinstance(repo, GithubRepository) else None


def _zenodo(spec: DatasetSpec, repo: ZenodoRepository, http: Http, base: str) -> Upstream:
    url = f"{base}/api/records/{repo.record_id}/versions/latest"
    doc = _get(http, url, spec)
    if not isinstance(doc, dict) or not str(doc.get("id", "")).isdigit():
        raise _unexpected(url, "no record id")
    latest, version = int(doc["id"]), (doc.get("metadata") or {}).get("version")
    label = f" (version {version})" if version else ""
    if latest == repo.record_id:
        return Upstream(spec.id, "current", str(repo.record_id), str(latest), f"record {latest}{label} is the latest")
    return Upstream(spec.id, "newer", str(repo.record_id), str(latest),
                    f"record {latest}{label} is newer: set repository.record_id to {latest} in the manifest")


def _figshare(spec: DatasetSpec, repo: FigshareRepository, http: Http, base: str) -> Upstream:
    url = f"{base}/v2/articles/{repo.article_id}/versions"
    doc = _get(http, url, spec)
    if not isinstance(doc, list) or not doc or not all(isinstance(v, dict) and isinstance(v.get("version"), int)
                                                       for v in doc):
        raise _unexpected(url, "not a list of versions")
    latest = max(v["version"] for v in doc)
    if repo.version is None:
        return Upstream(spec.id, "current", "latest", f"v{latest}", f"follows latest (v{latest})")
    if latest <= repo.version:
        return Upstream(spec.id, "current", f"v{repo.version}", f"v{latest}", f"v{repo.version} is the latest")
    return Upstream(spec.id, "newer", f"v{repo.version}", f"v{latest}",
                    f"v{latest} is newer: set repository.version to {latest} in the manifest")


def _newest_commit(http: Http, url: str, spec: DatasetSpec) -> tuple[str, datetime] | None:
    """(sha, committer date) of the first commit a commits list answers, None when it lists none."""
    doc = _get(http, url, spec)
    if not isinstance(doc, list):
        raise _unexpected(url, "not a list of commits")
    if not doc:
        return None
    try:
        first = doc[0]
        return first["sha"], _when(first["commit"]["committer"]["date"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _unexpected(url, f"commit without sha or date ({exc})") from None


def _github(spec: DatasetSpec, repo: GithubRepository, http: Http, api: str) -> Callable[[str | datetime | None],
                                                                                      Upstream]:
    path = repo.path.strip("/")
    where = f"path={quote(path)}&" if path else ""
    commits = f"{api}/repos/{repo.owner}/{repo.repo}/commits?{where}per_page=1"
    touching = f"touching {path}" if path else "on the branch"
    if COMMIT_SHA.match(repo.ref):  # frozen: compare with the newest commit on the default branch
        pinned, newest = _newest_commit(http, f"{commits}&sha={repo.ref}", spec), _newest_commit(http, commits, spec)
        if newest is None or (pinned is not None and pinned[0] == newest[0]):
            found = Upstream(spec.id, "current", repo.ref[:7], repo.ref[:7], f"no newer commit {touching}")
        else:
            sha, date = newest
            found = Upstream(spec.id, "newer", repo.ref[:7], sha[:7], f"commit {sha[:7]} of {date:%Y-%m-%d} is "
                             f"newer: set repository.ref to {sha} in the manifest")
        return lambda since: found
    newest = _newest_commit(http, f"{commits}&sha={quote(repo.ref)}", spec)
    if newest is None:
        return lambda since: Upstream(spec.id, "unknown", repo.ref, None, f"no commit {touching} on {repo.ref}")
    sha, date = newest
    latest = f"{sha[:7]} {date:%Y-%m-%d}"

    def against(last_success: str | datetime | None) -> Upstream:  # a followed branch: newer than the last run?
        since = _when(last_success)
        if since is None:
            return Upstream(spec.id, "unknown", repo.ref, latest, f"never ingested; follows {repo.ref}, "
                            f"newest commit {latest}")
        if date > since:
            return Upstream(spec.id, "newer", repo.ref, latest, f"commit {latest} came after the last run: the "
                            "next run takes it (pin repository.ref to a commit sha to freeze it)")
        return Upstream(spec.id, "current", repo.ref, latest, f"follows {repo.ref}; newest commit {latest} ingested")
    return against


def _when(value: str | datetime | None) -> datetime | None:
    """An aware UTC time from an ISO 8601 string (``Z`` allowed) or a datetime; None stays None."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
