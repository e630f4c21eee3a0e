"""Resolve a manifest entry to the files its repository publishes (Zenodo, figshare, GitHub, URLs)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from pvdoi.errors import RepositoryError
from pvdoi.http import Http
from pvdoi.manifest import DatasetSpec, FigshareRepository, GithubRepository, UrlRepository, ZenodoRepository
from pvdoi.records import RecordInfo, RemoteFile

FIGSHARE_PAGE_SIZE = 100


def resolve_files(spec: DatasetSpec, http: Http, urls: dict[str, str]) -> tuple[RecordInfo, list[RemoteFile]]:
    """The record's metadata and every file it publishes (unfiltered), sorted by name."""
    repo = spec.repository
    if isinstance(repo, ZenodoRepository):
        info, files = _zenodo(spec, repo, http, urls["zenodo"])
    elif isinstance(repo, FigshareRepository):
        info, files = _figshare(spec, repo, http, urls["figshare"])
    elif isinstance(repo, GithubRepository):
        info, files = _github(spec, repo, http, urls["github_api"], urls["github_raw"])
    else:
        info, files = _plain(spec, repo)
    return info, sorted(files, key=lambda f: f.name)


def _expect(cond: bool, spec: DatasetSpec, url: str, what: str) -> None:
    if not cond:
        raise RepositoryError(f"{url} returned an unexpected document: {what}", dataset_id=spec.id)


def _zenodo(spec: DatasetSpec, repo: ZenodoRepository, http: Http, base: str):
    url = f"{base}/api/records/{repo.record_id}"
    doc = http.get_json(url, dataset_id=spec.id)
    _expect(isinstance(doc, dict) and isinstance(doc.get("files"), list), spec, url, "no 'files' list")
    meta = doc.get("metadata") or {}
    files = []
    for entry in doc["files"]:
        name = entry.get("key") or entry.get("filename")
        size = entry.get("size", entry.get("filesize"))
        checksum = entry.get("checksum")
        _expect(bool(name), spec, url, f"file entry without a name: {entry}")
        if checksum and ":" not in checksum:
            checksum = f"md5:{checksum}"
        link = (entry.get("links") or {}).get("self") or f"{url}/files/{quote(name)}/content"
        files.append(RemoteFile(name=name, url=link, size=size, checksum=checksum))
    licence = meta.get("license")
    info = RecordInfo(
        repository="zenodo", record_id=str(doc.get("id", repo.record_id)), version=meta.get("version"),
        title=meta.get("title"), license=licence.get("id") if isinstance(licence, dict) else licence,
        doi=doc.get("doi"), creators=_names(meta.get("creators"), "name"), published=meta.get("publication_date"),
        publisher="Zenodo", url=(doc.get("links") or {}).get("html"),
    )
    return info, files


def _names(people, key: str) -> tuple[str, ...]:
    """The non-empty ``key`` of each entry of a record's list of creators or authors."""
    return tuple(p[key].strip() for p in people or () if isinstance(p, dict) and (p.get(key) or "").strip())


def _figshare(spec: DatasetSpec, repo: FigshareRepository, http: Http, base: str):
    article = f"{base}/v2/articles/{repo.article_id}"
    url = f"{article}/versions/{repo.version}" if repo.version else article
    doc = http.get_json(url, dataset_id=spec.id)
    _expect(isinstance(doc, dict), spec, url, "not an object")
    entries: list[dict] = []
    page = 1
    while True:  # the article document lists at most 10 files; the files endpoint is complete
        page_url = f"{article}/files?page={page}&page_size={FIGSHARE_PAGE_SIZE}"
        batch = http.get_json(page_url, dataset_id=spec.id)
        _expect(isinstance(batch, list), spec, page_url, "not a list")
        entries.extend(batch)
        if len(batch) < FIGSHARE_PAGE_SIZE:
            break
        page += 1
    files = []
    for entry in entries:
        if entry.get("is_link_only"):
            continue
        md5 = entry.get("supplied_md5") or entry.get("computed_md5")
        files.append(RemoteFile(name=entry["name"], url=entry["download_url"], size=entry.get("size"),
                                checksum=f"md5:{md5}" if md5 else None))
    licence = doc.get("license")
    info = RecordInfo(
        repository="figshare", record_id=str(repo.article_id), version=str(doc.get("version", repo.version)),
        title=doc.get("title"), license=licence.get("name") if isinstance(licence, dict) else licence,
        doi=doc.get("doi"), creators=_names(doc.get("authors"), "full_name"), published=doc.get("published_date"),
        publisher="figshare", url=doc.get("url_public_html"),
    )
    return info, files


def _github(spec: DatasetSpec, repo: GithubRepository, http: Http, api: str, raw: str):
    path = repo.path.strip("/")
    url = f"{api}/repos/{repo.owner}/{repo.repo}/contents/{quote(path)}?ref={quote(repo.ref)}"
    doc = http.get_json(url, dataset_id=spec.id)
    entries = doc if isinstance(doc, list) else [doc]
    files = []
    for entry in entries:
        _expect(isinstance(entry, dict) and "path" in entry, spec, url, f"bad entry {entry!r}")
        if entry.get("type", "file") != "file":
            continue
        raw_url = f"{raw}/{repo.owner}/{repo.repo}/{quote(repo.ref)}/{quote(entry['path'])}"
        files.append(RemoteFile(name=entry["name"], url=raw_url, size=entry.get("size"),
                                checksum=f"gitsha1:{entry['sha']}" if entry.get("sha") else None))
    return _github_info(spec, repo, http, api, path), files


def _github_info(spec: DatasetSpec, repo: GithubRepository, http: Http, api: str, path: str) -> RecordInfo:
    """The repository's own metadata (``GET /repos/{owner}/{repo}``): licence, owner, creation date, page.

    A repository has no registered title: its description is not one, so the manifest's title is used.
    """
    url = f"{api}/repos/{repo.owner}/{repo.repo}"
    doc = http.get_json(url, dataset_id=spec.id)
    _expect(isinstance(doc, dict), spec, url, "not an object")
    licence = doc.get("license") if isinstance(doc.get("license"), dict) else {}
    spdx = licence.get("spdx_id")
    owner = (doc.get("owner") or {}).get("login") if isinstance(doc.get("owner"), dict) else None
    return RecordInfo(repository="github", record_id=f"{repo.owner}/{repo.repo}/{path}", version=repo.ref,
                      title=None, license=spdx if spdx and spdx != "NOASSERTION" else None, doi=None,
                      creators=(owner,) if owner else (), published=doc.get("created_at"), publisher="GitHub",
                      url=doc.get("html_url"))


def _plain(spec: DatasetSpec, repo: UrlRepository):
    files = []
    for url in repo.urls:
        name = urlsplit(url).path.rsplit("/", 1)[-1]
        files.append(RemoteFile(name=name, url=url, size=None, checksum=repo.checksums.get(name)))
    return RecordInfo(repository="url", record_id=repo.urls[0], version=None, title=None, license=None,
                      doi=None), files
