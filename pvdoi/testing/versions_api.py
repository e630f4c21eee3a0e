"""Versions of the look-alike repositories: newer Zenodo records, figshare versions and GitHub commits.

:meth:`_VersionsApi.publish_new_version` makes a dataset's repository publish a newer version the way
the real one would: a Zenodo concept gains a record (its concept id and ``/versions/latest`` redirect
there), a figshare article gains version ``v + 1`` (the look-alike knows the pinned version and the
newer ones, not the older ones), a GitHub branch gains a commit touching the dataset's files. The
answers have the real APIs' shapes: Zenodo's ``/api/records/{id}/versions/latest`` (302 to the latest
record), figshare's ``/v2/articles/{id}/versions`` and GitHub's
``/repos/{owner}/{repo}/commits?sha=&path=&per_page=&page=``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from urllib.parse import quote

from pvdoi.testing.repo_api import REPOSITORIES, _json, _not_found, _Response

RECORD_STEP = 1000  # a newer Zenodo record's id is the pinned one plus this, per version
FIRST_COMMIT = "2024-01-15T09:30:00Z"  # when every look-alike GitHub file was first committed


class _VersionsApi:
    """The versions part of ``RepoServer``: the host class sets ``_lock``, ``_files``, ``base_url`` and
    ``_new_versions`` (dataset id → one ``(time, paths touched or None)`` per newer version published)."""

    def publish_new_version(self, dataset_id: str, *, touching: list[str] | None = None) -> None:
        """Publish a newer version of a dataset (same files): a Zenodo record, a figshare version, a GitHub commit.

        Args:
            dataset_id: A dataset of :data:`~pvdoi.testing.repo_api.REPOSITORIES`.
            touching: GitHub only: the paths the commit changes (default: every file of the dataset).
        """
        if dataset_id not in REPOSITORIES:
            raise KeyError(f"unknown dataset {dataset_id!r}; known: {', '.join(REPOSITORIES)}")
        if touching is not None and REPOSITORIES[dataset_id]["type"] != "github":
            raise ValueError("only a GitHub commit touches paths")
        with self._lock:
            when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._new_versions.setdefault(dataset_id, []).append((when, touching))

    # -- Zenodo ---------------------------------------------------------------------------------
    def _zenodo_ids(self, dataset_id: str) -> list[int]:
        """The record ids of a Zenodo dataset's versions, oldest first."""
        first = REPOSITORIES[dataset_id]["record_id"]
        return [first + RECORD_STEP * k for k in range(1 + len(self._new_versions.get(dataset_id, [])))]

    def _zenodo_concept(self, dataset_id: str) -> int:
        """The concept record id (Zenodo mints it just before the first version's id)."""
        repo = REPOSITORIES[dataset_id]
        return repo.get("concept_id", repo["record_id"] - 1)

    def _zenodo_lookup(self, record_id: int) -> tuple[str | None, int | None]:
        """(dataset, version index) of a record id; (dataset, None) for a concept id; (None, None) if unknown."""
        for ds, repo in REPOSITORIES.items():
            if repo["type"] != "zenodo":
                continue
            if record_id == self._zenodo_concept(ds):
                return ds, None
            if record_id in (ids := self._zenodo_ids(ds)):
                return ds, ids.index(record_id)
        return None, None

    def _zenodo_version_fields(self, dataset_id: str, index: int, url: str) -> dict:
        """What a record of version ``index`` adds to the pinned record's answer: concept, version, links."""
        concept, version = self._zenodo_concept(dataset_id), REPOSITORIES[dataset_id]["version"]
        if index and re.fullmatch(r"\d+(\.\d+)?", version):
            version = f"{int(float(version)) + index}.0"
        elif index:
            version = f"{version}.{index}"
        return {"conceptrecid": str(concept), "conceptdoi": f"10.5281/zenodo.{concept}", "version": version,
                "links": {"latest": f"{url}/versions/latest", "versions": f"{url}/versions"}}

    def _zenodo_latest(self, match, query, range_header) -> _Response:
        ds, _ = self._zenodo_lookup(int(match[1]))
        if ds is None:
            return _json(404, {"status": 404, "message": "The persistent identifier does not exist."})
        return _Response(302, {"Location": f"{self.base_url}/zenodo/api/records/{self._zenodo_ids(ds)[-1]}"})

    # -- figshare -------------------------------------------------------------------------------
    def _figshare_latest(self, dataset_id: str) -> int:
        return REPOSITORIES[dataset_id]["version"] + len(self._new_versions.get(dataset_id, []))

    def _figshare_versions(self, match, query, range_header) -> _Response:
        aid = int(match[1])
        ds = self._dataset("figshare", article_id=aid)
        if ds is None:
            return _json(404, {"message": "Entity not found: article", "code": "EntityNotFound"})
        return _json(200, [{"version": v, "url": f"{self.base_url}/figshare/v2/articles/{aid}/versions/{v}"}
                           for v in range(REPOSITORIES[ds]["version"], self._figshare_latest(ds) + 1)])

    # -- GitHub ---------------------------------------------------------------------------------
    def _github_history(self, dataset_id: str) -> list[tuple[str, str, set[str]]]:
        """(sha, date, paths touched) of the branch's commits, newest first (the first one added every file)."""
        repo = REPOSITORIES[dataset_id]
        paths = {repo["prefix"] + f.name for f in self._files[dataset_id]}
        history = [(hashlib.sha1(f"{dataset_id} first".encode()).hexdigest(), FIRST_COMMIT, paths | {"README.md"})]
        for k, (when, touching) in enumerate(self._new_versions.get(dataset_id, []), 1):
            sha = hashlib.sha1(f"{dataset_id} {k} {when}".encode()).hexdigest()
            history.append((sha, when, set(touching) if touching is not None else paths))
        return history[::-1]

    def _github_commits(self, match, query, range_header) -> _Response:
        owner, name = match[1], match[2]
        ds = self._dataset("github", owner=owner, repo=name)
        if ds is None:
            return _not_found(f"repository {owner}/{name}")
        history, ref = self._github_history(ds), query.get("sha", REPOSITORIES[ds]["ref"])
        if ref != REPOSITORIES[ds]["ref"]:
            shas = [sha for sha, _, _ in history]
            if ref not in shas:
                return _json(404, {"message": f"No commit found for SHA: {ref}", "status": "404"})
            history = history[shas.index(ref):]
        path = query.get("path", "").strip("/")
        history = [c for c in history if not path or any(p == path or p.startswith(path + "/") for p in c[2])]
        try:
            size, page = min(100, int(query.get("per_page", 30))), int(query.get("page", 1))
        except ValueError:
            return _json(400, {"message": "Invalid pagination", "status": "400"})
        api = f"{self.base_url}/github-api/repos/{owner}/{name}"
        return _json(200, [_commit(api, sha, when, history[i + 1][0] if i + 1 < len(history) else None)
                           for i, (sha, when, _) in enumerate(history) if (page - 1) * size <= i < page * size])


def _commit(api: str, sha: str, when: str, parent: str | None) -> dict:
    """One commit as GitHub's list of commits shows it (abridged)."""
    person = {"name": "look-alike", "email": "lookalike@example.org", "date": when}
    return {"sha": sha, "url": f"{api}/commits/{sha}", "html_url": f"https://github.com/{quote(api)}/commit/{sha}",
            "commit": {"author": person, "committer": person, "message": f"data as of {when}",
                       "tree": {"sha": hashlib.sha1(sha.encode()).hexdigest()}, "comment_count": 0},
            "parents": [{"sha": parent, "url": f"{api}/commits/{parent}"}] if parent else []}


VERSION_ROUTES = [
    (re.compile(r"^/zenodo/api/records/(\d+)/versions/latest/?$"), _VersionsApi._zenodo_latest),
    (re.compile(r"^/figshare/v2/articles/(\d+)/versions/?$"), _VersionsApi._figshare_versions),
    (re.compile(r"^/github-api/repos/([^/]+)/([^/]+)/commits/?$"), _VersionsApi._github_commits),
]
