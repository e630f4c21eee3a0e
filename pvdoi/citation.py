"""A dataset's reference (who, what, when, where, under which licence) and its BibTeX and CSL-JSON forms.

:func:`reference` merges what the repository record says (:class:`~pvdoi.records.RecordInfo`) with the manifest entry:

- **the record wins** for the facts it publishes: creators, publication date (so the year), publisher, version,
  DOI (the DOI of the version read: for a Zenodo concept DOI in the manifest, the record's version DOI), title
  (a GitHub repository has no registered title, so there the manifest's title is used) and landing page;
- **the manifest wins** for the licence: it is the pinned, reviewed one (the record's is kept as
  ``record_licence``, and the two may differ, e.g. ``CC-BY-4.0`` and ``cc-by-4.0``);
- the manifest is the fallback for everything the record leaves out (the year from its ``citation``, the DOI or URL
  from its ``doi``), and its ``citation`` (the data paper) goes into the note.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from pvdoi.manifest import DatasetSpec
from pvdoi.records import RecordInfo

_DOI = re.compile(r"^10\.\d{4,9}/\S+$")
_YEAR = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")
_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")
# LaTeX's special characters in BibTeX text fields; braces as commands, since BibTeX counts even ``\{``
_LATEX = {"\\": r"\textbackslash{}", "{": r"\textbraceleft{}", "}": r"\textbraceright{}", "&": r"\&", "%": r"\%",
          "$": r"\$", "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def reference(spec: DatasetSpec, info: RecordInfo | None = None) -> dict:
    """The dataset's reference as plain JSON values (see the module's docstring for which source wins)."""
    info = info or RecordInfo(repository=spec.repository.type, record_id="", version=None, title=None,
                              license=None, doi=None)
    doi = next((d for d in (_bare_doi(info.doi), _bare_doi(spec.doi)) if d), None)
    issued = _date(info.published) or _date(_first_year(spec.citation))
    url = info.url or (f"https://doi.org/{doi}" if doi else None) or _http(spec.doi) or _first_url(spec)
    ref = {
        "dataset_id": spec.id, "title": info.title or spec.title, "creators": list(info.creators),
        "issued": issued, "year": issued[0] if issued else None,
        "publisher": info.publisher or (urlsplit(first).hostname if (first := _first_url(spec)) else None),
        "version": info.version, "doi": doi, "url": url, "licence": spec.license,
        "record_licence": info.license, "paper": spec.citation,
    }
    return ref | {"citation": citation_text(ref)}


def catalog_reference(dataset_id: str, doi: str | None, title: str | None, licence: str | None,
                      version: str | None) -> dict:
    """A reference from a warehouse catalog row loaded before references were kept (no creators, no year)."""
    bare = _bare_doi(doi)
    ref = {"dataset_id": dataset_id, "title": title or dataset_id, "creators": [], "issued": None, "year": None,
           "publisher": None, "version": version, "doi": bare, "url": f"https://doi.org/{bare}" if bare else _http(doi),
           "licence": licence, "record_licence": None, "paper": None}
    return ref | {"citation": citation_text(ref)}


def citation_text(ref: dict) -> str:
    """One line to cite the dataset by: creators (year). Title (version) [dataset]. Publisher. DOI or URL."""
    who = "; ".join(", ".join(split_name(n) or (n,)) for n in ref["creators"]) or ref.get("publisher") or "Unknown"
    version = f" (version {ref['version']})" if ref.get("version") else ""
    where = f"https://doi.org/{ref['doi']}" if ref.get("doi") else ref.get("url")
    parts = [f"{who} ({ref['year'] or 'n.d.'}). {ref['title']}{version} [dataset]", ref.get("publisher"), where]
    return ". ".join(p for p in parts if p)


def bibtex(refs: list[dict]) -> str:
    """``@dataset`` entries keyed by dataset id, text fields escaped for LaTeX, names joined by ``and``."""
    return "\n".join(_bibtex_entry(ref) for ref in refs)


def _bibtex_entry(ref: dict) -> str:
    note = f"Licence: {ref['licence']}" + (f". Data paper: {ref['paper']}" if ref.get("paper") else "")
    fields = [
        ("author", " and ".join(_bibtex_name(n) for n in ref["creators"]) or None),
        ("title", _latex(ref["title"])), ("year", str(ref["year"]) if ref.get("year") else None),
        ("publisher", _latex(ref.get("publisher"))), ("version", _latex(ref.get("version"))),
        ("doi", _verbatim(ref.get("doi"))), ("url", _verbatim(ref.get("url"))), ("note", _latex(note)),
    ]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@dataset{{{ref['dataset_id']},\n{body}\n}}\n"


def csl_json(refs: list[dict]) -> str:
    """The references as a CSL-JSON array (``type: dataset``)."""
    return json.dumps([_csl_item(ref) for ref in refs], indent=1, ensure_ascii=False) + "\n"


def _csl_item(ref: dict) -> dict:
    item = {"id": ref["dataset_id"], "type": "dataset", "title": ref["title"],
            "author": [_csl_name(n) for n in ref["creators"]],
            "issued": {"date-parts": [ref["issued"]]} if ref.get("issued") else None,
            "DOI": ref.get("doi"), "publisher": ref.get("publisher"), "version": ref.get("version"),
            "URL": ref.get("url"), "license": ref.get("licence"),
            "note": f"Licence: {ref['licence']}" + (f". Data paper: {ref['paper']}" if ref.get("paper") else "")}
    return {key: value for key, value in item.items() if value}


def split_name(name: str) -> tuple[str, str] | None:
    """``(family, given)`` of a person's name ("Family, Given" or "Given Family"); None for one word (an
    organisation or a login), which stays whole."""
    name = " ".join(name.split())
    if "," in name:
        family, given = (part.strip() for part in name.split(",", 1))
        return (family, given) if family and given else None
    words = name.split(" ")
    return (words[-1], " ".join(words[:-1])) if len(words) > 1 else None


def _csl_name(name: str) -> dict:
    parts = split_name(name)
    return {"family": parts[0], "given": parts[1]} if parts else {"literal": name}


def _bibtex_name(name: str) -> str:
    """"Family, Given", or a one-word name in braces; an "and" inside a name braced so BibTeX does not split on it."""
    parts = split_name(name)
    text = f"{_latex(parts[0])}, {_latex(parts[1])}" if parts else "{" + _latex(name) + "}"
    return re.sub(r"(?i)(?<=\s)(and)(?=\s)", r"{\1}", text)


def _latex(text: str | None) -> str | None:
    return "".join(_LATEX.get(c, c) for c in text) if text else None


def _verbatim(text: str | None) -> str | None:
    """A DOI or URL (verbatim fields): only braces, which BibTeX counts, percent-encoded."""
    return text.replace("{", "%7B").replace("}", "%7D") if text else None


def _bare_doi(value: str | None) -> str | None:
    """``10.x/y`` from a bare DOI, ``doi:10.x/y`` or ``https://doi.org/10.x/y``; None for anything else."""
    if not value:
        return None
    value = re.sub(r"^(doi:|https?://(dx\.)?doi\.org/)", "", value.strip(), flags=re.IGNORECASE)
    return value if _DOI.match(value) else None


def _http(value: str | None) -> str | None:
    return value if value and value.startswith(("http://", "https://")) else None


def _first_url(spec: DatasetSpec) -> str | None:
    return (getattr(spec.repository, "urls", None) or [None])[0]


def _first_year(text: str | None) -> str | None:
    return (m := _YEAR.search(text or "")) and m[1]


def _date(value: str | None) -> list[int] | None:
    """``[year, month, day]`` (as far as given) of an ISO date or date-time."""
    m = _DATE.match(value or "")
    return [int(part) for part in m.groups() if part] if m else None
