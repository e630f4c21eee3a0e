"""The GitHub repository document (``GET /repos/{owner}/{repo}``) of the local repository server.

Shaped like the real API's answer: ``license`` (``spdx_id``, or null when GitHub detects none), ``owner.login``,
``description``, ``html_url`` (github.com, as GitHub always answers it: a page for people, not an API address),
``created_at`` and ``pushed_at``, ``default_branch``.
"""

from __future__ import annotations

import zlib

from pvdoi.testing.repo_api import REPOSITORIES, _json, _not_found

_LICENCES = {"MIT": "MIT License", "CC-BY-4.0": "Creative Commons Attribution 4.0 International"}


def github_repository(api, match, query, range_header):
    """The repository's metadata, or GitHub's 404 for a repository the server does not hold."""
    owner, name = match[1], match[2]
    ds = api._dataset("github", owner=owner, repo=name)
    if ds is None:
        return _not_found(f"repository {owner}/{name}")
    repo = REPOSITORIES[ds]
    spdx = repo.get("license")
    licence = ({"key": spdx.lower(), "name": _LICENCES.get(spdx, spdx), "spdx_id": spdx,
                "url": f"https://api.github.com/licenses/{spdx.lower()}"} if spdx else None)
    return _json(200, {
        "id": zlib.crc32(f"{repo['owner']}/{repo['repo']}".encode()), "name": repo["repo"],
        "full_name": f"{repo['owner']}/{repo['repo']}", "private": False,
        "owner": {"login": repo["owner"], "type": repo.get("owner_type", "User")},
        "html_url": f"https://github.com/{repo['owner']}/{repo['repo']}",
        "description": repo.get("description"), "license": licence, "default_branch": repo["ref"],
        "created_at": repo.get("created"), "pushed_at": repo.get("pushed", repo.get("created")),
        "url": f"{api.base_url}/github-api/repos/{repo['owner']}/{repo['repo']}",
    })
