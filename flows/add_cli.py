"""``pvdoi datasets add DOI``: a manifest entry proposed for a dataset the manifest does not list, and appended with
``--write``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flows.console import error
from pvdoi.errors import PVDOIError
from pvdoi.settings import get_settings

MB = 1024 * 1024


def add(source: Annotated[str, typer.Argument(help="a DOI (10.xxxx/...), a GitHub repository URL or a plain URL")],
        dataset_id: Annotated[str | None, typer.Option("--id", help="the new dataset's id (default: from the title)")]
        = None,
        write: Annotated[bool, typer.Option("--write", help="append the entry to the manifest")] = False,
        manifest: Annotated[str | None, typer.Option("--manifest", help="manifest JSON")] = None,
        max_mb: Annotated[float | None, typer.Option("--max-mb", help="download no file larger than this many MB")]
        = None,
        json_out: Annotated[bool, typer.Option("--json", help="the proposal as JSON on stdout")] = False) -> None:
    """Propose a manifest entry for a DOI's record: its files, vector layers, CRS, count and guessed columns."""
    from pvdoi.entry import append_entry
    from pvdoi.manifest import load_manifest
    from pvdoi.proposal import propose

    settings = get_settings()
    path = manifest or settings.manifest_path
    try:
        proposal = propose(source, manifest=load_manifest(path), settings=settings, dataset_id=dataset_id,
                           max_mb=max_mb)
        if write:
            append_entry(path, proposal.entry)
    except PVDOIError as exc:
        error(str(exc))
        raise typer.Exit(2) from None
    if json_out:
        print(json.dumps({"entry": proposal.entry, "notes": proposal.notes, "written": write,
                          "files": [{"name": f.name, "size": f.size, "checksum": f.checksum} for f in proposal.files],
                          "layers": [{"file": layer.file, "member": layer.member, "layer": layer.layer,
                                      "crs": layer.crs, "count": layer.count, "geometry_type": layer.geometry_type,
                                      "fields": layer.fields} for layer in proposal.layers]}, indent=1))
        return
    _print(proposal, path, write)


def _print(proposal, path: str, write: bool) -> None:
    """The record's files and layers, a ``# guess`` line per guess, then the entry's JSON."""
    from pvdoi.entry import format_entry

    info = proposal.info
    print(f"# record: {info.repository} {info.record_id}" + (f" version {info.version}" if info.version else "")
          + (f": {info.title}" if info.title else ""))
    for f in proposal.files:
        size = "?" if f.size is None else f"{f.size / MB:,.1f} MB" if f.size >= MB else f"{f.size:,} B"
        print(f"#   {f.name}  {size}  {f.checksum or 'no checksum'}")
    for layer in proposal.layers:
        where = f"{layer.file}!{layer.member}" if layer.member else layer.file
        print(f"# layer {layer.layer!r} in {where}: {layer.count:,} {layer.geometry_type}, {layer.crs or 'no CRS'}, "
              f"{len(layer.fields)} columns")
    for note in proposal.notes:
        print(f"# guess: {note}")
    print(format_entry(proposal.entry, indent=0))
    print(f"# appended to {path}" if write else f"# not written: --write appends it to {path}")
