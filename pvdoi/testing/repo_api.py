"""The Zenodo, figshare and GitHub API answers of :class:`~pvdoi.testing.reposerver.RepoServer`.

:data:`REPOSITORIES` says how each dataset's repository presents itself; :class:`_RepoApi`
routes a request path to the matching API (Zenodo records, figshare articles, versions, file
listings and downloads, GitHub contents and raw files) and builds the answer as a :class:`_Response`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pvdoi.testing.published import _File

_CC_BY = {"id": "cc-by-4.0", "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}
# How each repository presents itself; metadata abridged from the real records.
REPOSITORIES: dict[str, dict] = {
    "usa_cali_usgs_pv_2016": {
        "type": "figshare", "article_id": 3385780, "version": 4, "published": "2016-11-23",
        "title": "Distributed Solar Photovoltaic Array Location and Extent Data Set for Remote Sensing "
                 "Object Identification",
        "authors": ["Kyle Bradbury", "Raghav Saboo", "Timothy Johnson", "Jordan Malof", "Arjun Devarajan",
                    "Wuming Zhang", "Leslie Collins", "Richard Newell"],
        "license": {"id": "cc0-1.0", "name": "CC0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}},
    "uk_crowdsourced_pv_2020": {
        "type": "zenodo", "record_id": 4059881, "version": "1.0", "published": "2020-09-30",
        "title": "A harmonised, high-coverage, open dataset of solar photovoltaic installations in the UK",
        "authors": ["Stowell, Dan", "Kelly, Jack", "Tanner, Damien", "Taylor, Jamie", "Jones, Ethan",
                    "Geddes, James", "Chalstrey, Ed"], "license": _CC_BY},
    "global_pv_inventory_sent2_spot_2021": {
        "type": "zenodo", "record_id": 5005868, "concept_id": 5005867, "version": "1.0",
        "published": "2021-06-22", "title": "A global inventory of photovoltaic solar energy generating units",
        "authors": ["Kruitwagen, Lucas", "Story, Kyle", "Friedrich, Johannes", "Byers, Logan",
                    "Skillman, Sam", "Hepburn, Cameron"], "license": _CC_BY},
    "global_harmonized_large_solar_farms_2020": {
        "type": "figshare", "article_id": 11310269, "version": 6, "published": "2020-04-23",
        "title": "Harmonised global datasets of wind and solar farm locations and power",
        "authors": ["Sebastian Dunnett", "Alessandro Sorichetta", "Gail Taylor", "Felix Eigenbrod"],
        "license": _CC_BY},
    # GitHub: licence as its spdx_id (None: GitHub detects none); the dates are look-alike values
    "chn_med_res_pv_2024": {"type": "github", "owner": "qingfengxitu", "repo": "ChinaPV", "ref": "main",
                            "prefix": "", "license": None, "created": "2023-10-09T02:11:45Z",
                            "description": "China PV dataset (2015, 2020) at 30 m resolution"},
    "ind_pv_solar_farms_2022": {"type": "github", "owner": "microsoft", "repo": "solar-farms-mapping",
                                "ref": "main", "prefix": "data/", "license": "MIT", "owner_type": "Organization",
                                "created": "2021-09-14T17:30:02Z",
                                "description": "Solar farms mapping in India with Sentinel-2 imagery"},
    # In no manifest: a Zenodo record with a DOI of its own (DataCite's test prefix), found through the DOI resolver
    "gb_solar_parks_2031": {
        "type": "zenodo", "record_id": 9100001, "doi": "10.5072/pvdoi.solar-parks-england", "version": "2.1",
        "published": "2031-03-14", "title": "Ground-mounted solar parks in England",
        "authors": ["Okafor, Adaeze", "Lindqvist, Per"], "license": _CC_BY},
}


@dataclass
class _Response:
    """An answer: status and headers, then ``body`` or ``length`` bytes of ``file`` from ``start``."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: _File | None = None
    start: int = 0
    length: int = 0


def _json(status: int, obj, headers: dict[str, str] | None = None) -> _Response:
    body = json.dumps(obj, indent=1).encode()
    return _Response(status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body)


def _not_found(what: str) -> _Response:
    return _json(404, {"status": 404, "message": f"Not Found: {what}"})


class _RepoApi:
    """The repository APIs of ``RepoServer``.

    It answers from the state :class:`~pvdoi.testing.published._PublishedFiles` works on
    (``_files``, ``_by_id``, ``_published``), under the host's ``_lock``, with links to its ``base_url``.
    """

    def _respond(self, raw_path: str, range_header: str | None) -> _Response:
        split = urlsplit(raw_path)
        path, query = unquote(split.path), {k: v[-1] for k, v in parse_qs(split.query).items()}
        for pattern, handler in self._routes:
            if match := pattern.match(path):
                with self._lock:
                    return handler(self, match, query, range_header)
        return _not_found(f"no API route for {path}")

    def _dataset(self, kind: str, **ids) -> str | None:
        for ds, repo in REPOSITORIES.items():
            if repo["type"] == kind and all(str(repo.get(k)).lower() == str(v).lower() for k, v in ids.items()):
                return ds
        return None

    def _md5(self, f: _File) -> str:
        return self._published.get(f.file_id, f.md5)

    def _zenodo(self, match, query, range_header) -> _Response:
        rid, key = int(match[1]), match[2]
        ds, index = self._zenodo_lookup(rid)  # a concept (index None) resolves to its latest record
        if ds is not None and index is None:
            target = match[0].replace(f"/records/{rid}", f"/records/{self._zenodo_ids(ds)[-1]}", 1)
            return _Response(301, {"Location": self.base_url + quote(target)})
        if ds is None:
            return _json(404, {"status": 404, "message": "The persistent identifier does not exist."})
        files = {f.name: f for f in self._files[ds]}
        if key is not None:
            return _download(files[key], range_header) if key in files else _not_found(f"file {key}")
        repo, url = REPOSITORIES[ds], f"{self.base_url}/zenodo/api/records/{rid}"
        checksum = {f.name: (m if ":" in (m := self._md5(f)) else f"md5:{m}") for f in files.values()}
        versioned = self._zenodo_version_fields(ds, index, url)
        record = {
            "id": rid, "recid": str(rid), "doi": repo.get("doi", f"10.5281/zenodo.{rid}"),
            "metadata": {"title": repo["title"], "creators": [{"name": a} for a in repo["authors"]],
                         "license": {"id": repo["license"]["id"]}, "version": versioned.pop("version"),
                         "publication_date": repo["published"], "resource_type": {"type": "dataset"}},
            "files": [{"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rid}/{f.file_id}")), "key": f.name,
                       "size": f.size, "checksum": checksum[f.name],
                       "links": {"self": f"{url}/files/{quote(f.name)}/content"}} for f in files.values()],
            "links": {"self": url, "files": f"{url}/files", **versioned.pop("links")}, **versioned,
        }
        return _json(200, record)

    def _figshare_file(self, f: _File) -> dict:
        md5 = self._md5(f)
        return {"id": f.file_id, "name": f.name, "size": f.size, "is_link_only": False,
                "download_url": f"{self.base_url}/figshare/ndownloader/files/{f.file_id}",
                "supplied_md5": md5, "computed_md5": md5, "mimetype": "application/octet-stream"}

    def _figshare(self, match, query, range_header) -> _Response:
        aid, version, listing = int(match[1]), match[2], match[3]
        ds = self._dataset("figshare", article_id=aid)
        known = range(REPOSITORIES[ds]["version"], self._figshare_latest(ds) + 1) if ds else range(0)
        if ds is None or (version is not None and int(version) not in known):
            return _json(404, {"message": "Entity not found: article", "code": "EntityNotFound"})
        files = [self._figshare_file(f) for f in self._files[ds]]
        if listing:
            try:
                size = int(query.get("page_size", query.get("limit", 10)))
                start = int(query["offset"]) if "offset" in query else (int(query.get("page", 1)) - 1) * size
                assert 1 <= size <= 1000 and start >= 0
            except (ValueError, AssertionError):
                return _json(400, {"message": f"Invalid pagination parameters {query}", "code": "BadRequest"})
            return _json(200, files[start:start + size])
        repo = REPOSITORIES[ds]
        v = int(version) if version is not None else self._figshare_latest(ds)
        return _json(200, {
            "id": aid, "title": repo["title"], "doi": f"10.6084/m9.figshare.{aid}.v{v}", "version": v,
            "url": f"{self.base_url}/figshare/v2/articles/{aid}/versions/{v}", "defined_type_name": "dataset",
            "published_date": f"{repo['published']}T00:00:00Z",
            "license": {"name": repo["license"]["name"], "url": repo["license"]["url"]},
            "authors": [{"id": 1000 + i, "full_name": a} for i, a in enumerate(repo["authors"])],
            "files": files[:10],
        })

    def _ndownloader(self, match, query, range_header) -> _Response:
        f = self._by_id.get(int(match[1]))
        return _download(f, range_header) if f else _json(404, {"message": "File not found", "code": "NotFound"})

    def _github(self, match, query, range_header) -> _Response:
        owner, repo_name = match[1], match[2]
        raw = match[0].startswith("/github-raw/")
        ref = match[3] if raw else query.get("ref")
        path = (match[4] if raw else match[3] or "").strip("/")
        ds = self._dataset("github", owner=owner, repo=repo_name)
        if ds is None:
            return _not_found(f"repository {owner}/{repo_name}")
        repo = REPOSITORIES[ds]
        ref = ref or repo["ref"]
        if ref != repo["ref"]:
            return _json(404, {"message": f"No commit found for the ref {ref}", "status": "404"})
        files = {repo["prefix"] + f.name: f for f in self._files[ds]}
        if raw:
            return _download(files[path], range_header) if path in files else _not_found(path)
        api = f"{self.base_url}/github-api/repos/{owner}/{repo_name}/contents"

        def entry(p: str, f: _File | None) -> dict:
            return {"name": p.rsplit("/", 1)[-1], "path": p, "size": f.size if f else 0,
                    "sha": self._published.get(f.file_id, f.blob_sha) if f else hashlib.sha1(p.encode()).hexdigest(),
                    "url": f"{api}/{quote(p)}?ref={ref}", "type": "file" if f else "dir",
                    "download_url": f"{self.base_url}/github-raw/{owner}/{repo_name}/{ref}/{quote(p)}" if f else None}
        if path in files:
            return _json(200, entry(path, files[path]))
        prefix = f"{path}/" if path else ""
        children = {p[len(prefix):].split("/")[0] for p in files if p.startswith(prefix)}
        if not children:
            return _json(404, {"message": "Not Found", "status": "404"})
        return _json(200, [entry(prefix + c, files.get(prefix + c)) for c in sorted(children)])


def _download(f: _File, range_header: str | None) -> _Response:
    """A file answer, honouring ``Range: bytes=a-b`` (also ``a-`` and ``-n``) with 206."""
    start, end, status = 0, f.size - 1, 200
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes", "ETag": f'"{f.md5}"',
               "Content-Disposition": f'attachment; filename="{f.name}"'}
    if range_header and (m := re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())) and (m[1] or m[2]):
        start, end = (int(m[1]), min(int(m[2] or f.size - 1), f.size - 1)) if m[1] else (max(0, f.size - int(m[2])), end)
        if start >= f.size or start > end:
            return _json(416, {"message": f"range {range_header} outside 0-{f.size}"},
                         {"Content-Range": f"bytes */{f.size}"})
        status, headers["Content-Range"] = 206, f"bytes {start}-{end}/{f.size}"
    return _Response(status, headers, file=f, start=start, length=end - start + 1)


def _github_repository(api: _RepoApi, match, query, range_header) -> _Response:
    """``/github-api/repos/{owner}/{repo}``: the repository's metadata (in :mod:`pvdoi.testing.github_api`)."""
    from pvdoi.testing.github_api import github_repository

    return github_repository(api, match, query, range_header)


_ROUTES = [
    (re.compile(r"^/zenodo/api/records/(\d+)(?:/files/(.+)/content)?/?$"), _RepoApi._zenodo),
    (re.compile(r"^/figshare/v2/articles/(\d+)(?:/versions/(\d+))?(/files)?/?$"), _RepoApi._figshare),
    (re.compile(r"^/figshare/ndownloader/files/(\d+)/?$"), _RepoApi._ndownloader),
    (re.compile(r"^/github-api/repos/([^/]+)/([^/]+)/?$"), _github_repository),
    (re.compile(r"^/github-api/repos/([^/]+)/([^/]+)/contents(?:/(.*))?$"), _RepoApi._github),
    (re.compile(r"^/github-raw/([^/]+)/([^/]+)/([^/]+)/(.+)$"), _RepoApi._github),
]
_RepoApi._routes = _ROUTES  # RepoServer adds the versions routes (pvdoi.testing.versions_api)
