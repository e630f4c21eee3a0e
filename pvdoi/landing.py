"""Where a DOI, a GitHub repository URL or a plain URL leads: the manifest ``repository`` of its record.

A DOI goes through the DOI resolver's handle redirect (``GET {doi_resolver_url}/{doi}`` answers 302 with the
record's landing page), except the two forms that name their record themselves (``10.5281/zenodo.N`` → Zenodo
record N; ``10.6084/m9.figshare.N.vV`` → figshare article N, version V). Landing pages map to repositories by the
shape of their path, whatever the host (a mirror or a test server stands in for zenodo.org and figshare.com):
``/records/N`` or ``/record/N`` is a Zenodo record, ``/articles/.../N[/V]`` a figshare article; GitHub's web URLs
(``https://github.com/owner/repo[/tree/ref/path]``) a GitHub repository. A URL of a file is a plain URL source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit

from urllib3.exceptions import HTTPError as Urllib3HTTPError

from pvdoi.archive import is_archive
from pvdoi.errors import RepositoryError, TransientDownloadError
from pvdoi.http import Http, make_retry

DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_DOI_PREFIXES = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)", re.IGNORECASE)
_ZENODO_DOI = re.compile(r"^10\.5281/zenodo\.(\d+)$", re.IGNORECASE)
_FIGSHARE_DOI = re.compile(r"^10\.6084/m9\.figshare\.(\d+)(?:\.v(\d+))?$", re.IGNORECASE)
_ZENODO_PATH = re.compile(r"/records?/(\d+)/?$")
_GITHUB_HOSTS = {"github.com", "www.github.com"}
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb")


@dataclass(frozen=True)
class Source:
    """A record to propose a manifest entry for: its ``repository`` (manifest JSON), its DOI or URL, and how it was
    found (for the notes)."""

    repository: dict
    doi: str
    how: str


def find_source(text: str, http: Http) -> Source:
    """The repository record that a DOI, a GitHub repository URL or a plain URL names."""
    text = text.strip()
    doi = unquote(_DOI_PREFIXES.sub("", text))
    if DOI.match(doi):
        return _from_doi(doi, http)
    if not re.match(r"^https?://", text, re.IGNORECASE):
        raise RepositoryError(f"{text!r} is neither a DOI (10.<prefix>/<suffix>) nor an http(s) URL")
    repository = repository_of_url(text)
    if repository is None:
        raise RepositoryError(f"{text} is no Zenodo record, figshare article, GitHub repository or vector file; "
                              f"name the record's DOI, its landing page or the file's URL")
    return Source(repository, text, f"the URL's shape ({repository['type']})")


def _from_doi(doi: str, http: Http) -> Source:
    if m := _ZENODO_DOI.match(doi):
        return Source({"type": "zenodo", "record_id": int(m[1])}, doi, "the DOI names a Zenodo record")
    if m := _FIGSHARE_DOI.match(doi):
        repository = {"type": "figshare", "article_id": int(m[1])} | ({"version": int(m[2])} if m[2] else {})
        return Source(repository, doi, "the DOI names a figshare article")
    landing = resolve_doi(doi, http)
    repository = repository_of_url(landing)
    if repository is None:
        raise RepositoryError(f"DOI {doi} resolves to {landing}, which is no Zenodo record, figshare article, GitHub "
                              f"repository or vector file; write its entry by hand (repository type 'url')")
    return Source(repository, doi, f"the DOI resolver led to {landing}")


def resolve_doi(doi: str, http: Http) -> str:
    """The landing page a DOI resolves to (the resolver's redirect, not followed)."""
    base = http.settings.doi_resolver_url.rstrip("/")
    url = f"{base}/{quote(doi, safe='/:;()._-')}"
    try:
        resp = http.pool.request("GET", url, redirect=False, retries=make_retry(http.settings))
    except Urllib3HTTPError as exc:
        raise TransientDownloadError(f"the DOI resolver {base} cannot be reached for {doi}: {exc}") from None
    location = resp.headers.get("Location")
    if resp.status == 404:
        raise RepositoryError(f"DOI {doi} resolves to nothing: {url} answered 404 (mistyped, or not registered)")
    if not (300 <= resp.status < 400 and location):
        raise RepositoryError(f"DOI {doi}: {url} answered HTTP {resp.status} without a redirect to a landing page")
    return urljoin(url, location)


def repository_of_url(url: str) -> dict | None:
    """The manifest ``repository`` a landing page or file URL stands for, or ``None``."""
    parts = urlsplit(url)
    segments = [s for s in unquote(parts.path).split("/") if s]
    if parts.hostname in _GITHUB_HOSTS and len(segments) >= 2:
        owner, repo = segments[0], segments[1].removesuffix(".git")
        out = {"type": "github", "owner": owner, "repo": repo}
        if len(segments) >= 4 and segments[2] in ("tree", "blob"):
            out |= {"ref": segments[3]} | ({"path": "/".join(segments[4:])} if len(segments) > 4 else {})
        return out
    if m := _ZENODO_PATH.search(parts.path):
        return {"type": "zenodo", "record_id": int(m[1])}
    if "articles" in segments:
        tail = segments[segments.index("articles") + 1:]
        numbers = [s for s in tail[-2:] if s.isdigit()]
        if len(numbers) == 2:  # .../<slug>/<id>/<version>, or the older /articles/<id>/<version>
            return {"type": "figshare", "article_id": int(numbers[0]), "version": int(numbers[1])}
        if tail and tail[-1].isdigit():
            return {"type": "figshare", "article_id": int(tail[-1])}
    name = segments[-1].lower() if segments else ""
    if name.endswith(VECTOR_SUFFIXES) or is_archive(name):
        return {"type": "url", "urls": [url]}
    return None
