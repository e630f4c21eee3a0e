"""doi.org's handle redirect and the repositories' landing pages, for :class:`~pvdoi.testing.reposerver.RepoServer`.

``GET /doi/<doi>`` answers as doi.org does: ``302`` with ``Location`` the landing page of the record the DOI names,
or ``404`` for a DOI nobody registered. The landing pages live on the same server under host-independent path
shapes of the real ones: ``/zenodo-web/records/<id>`` (zenodo.org/records/<id>) and
``/figshare-web/articles/dataset/<slug>/<id>/<version>`` (figshare.com/articles/...). :data:`OTHER_LANDINGS` are
DOIs whose landing page is no repository record (a journal article). Point the product at the resolver with
``PVDOI_DOI_RESOLVER_URL=<base_url>/doi`` (:attr:`_DoiApi.doi_resolver_url`).
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import quote, unquote, urlsplit

from pvdoi.testing.repo_api import REPOSITORIES, _not_found, _Response

OTHER_LANDINGS = {"10.5072/pvdoi.journal-article": "/journal/articles/pv-mapping-review"}


def registered_dois() -> dict[str, str]:
    """Every DOI the resolver knows (lower case, as DOIs compare) → the landing page's path on this server."""
    out = {doi.lower(): path for doi, path in OTHER_LANDINGS.items()}
    for repo in REPOSITORIES.values():
        slug = re.sub(r"[^A-Za-z0-9]+", "_", repo.get("title", "")).strip("_")
        if repo["type"] == "zenodo":
            landing = f"/zenodo-web/records/{repo['record_id']}"
            out[repo.get("doi", f"10.5281/zenodo.{repo['record_id']}").lower()] = landing
            if "concept_id" in repo:  # a concept DOI lands on the latest version
                out[f"10.5281/zenodo.{repo['concept_id']}"] = landing
        elif repo["type"] == "figshare":
            aid, v = repo["article_id"], repo["version"]
            out[f"10.6084/m9.figshare.{aid}.v{v}"] = f"/figshare-web/articles/dataset/{slug}/{aid}/{v}"
    return out


class _DoiApi:
    """The DOI resolver and landing pages; other paths go on to the repository APIs (the next class in line)."""

    @property
    def doi_resolver_url(self) -> str:
        """The base URL that stands in for ``https://doi.org``."""
        return f"{self.base_url}/doi"

    def _respond(self, raw_path: str, range_header: str | None) -> _Response:
        path = unquote(urlsplit(raw_path).path)
        if path.startswith("/doi/"):
            doi = path[len("/doi/"):].strip("/").lower()
            landing = registered_dois().get(doi)
            if landing is None:
                return _not_found(f"DOI {doi}")  # doi.org: "DOI Not Found"
            return _Response(302, {"Location": self.base_url + quote(landing), "Content-Type": "text/html"},
                             f'<a href="{escape(landing)}">redirect</a>'.encode())
        if path.startswith(("/zenodo-web/", "/figshare-web/", "/journal/")):
            body = f"<!doctype html><title>{escape(path)}</title><h1>Landing page</h1>"
            return _Response(200, {"Content-Type": "text/html; charset=utf-8"}, body.encode())
        return super()._respond(raw_path, range_header)
