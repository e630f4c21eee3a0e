"""Deterministic look-alike files of the six DOI datasets, for tests and offline runs.

File names, columns, geometry types and CRS follow ``shared/datasets.md``; the values are
random (``numpy.random.default_rng(seed)``), so the same arguments give byte-identical files.
The India file is the real sample, copied unchanged. Each dataset gets a folder
``{out_dir}/{dataset_id}/`` holding every file its repository publishes (also the ones the
manifest filters must exclude); ``{out_dir}/lookalike.json`` records what was written. One more
dataset, in no manifest, stands in for a dataset the product has never seen (``newcomer.py``).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np

from pvdoi.testing.lookalike.common import shared_dir
from pvdoi.testing.lookalike.farms import INDIA_FILE, _chinapv, _dunnett, _india, _kruitwagen
from pvdoi.testing.lookalike.newcomer import _parks
from pvdoi.testing.lookalike.rooftops import _bradbury, _uk

__all__ = ["INDIA_FILE", "MARKER", "shared_dir", "write_lookalike_files"]

MARKER = "lookalike.json"
# key: (feature count at scale 1.0, count at scale None); "≈" marks made-up full-size counts
_COUNTS = {
    "bradbury": (19_433, 120), "uk": (265_406, 300),
    "predicted": (68_661, 200), "trn": (36_882, 80), "cv": (6_281, 30), "test": (7_263, 40),
    "trn_tiles": (1_500, 12), "cv_tiles": (300, 6), "test_tiles": (350, 6),  # ≈
    "solar": (35_272, 150), "wind": (20_000, 60),  # wind ≈
    "PV_Test_2015": (687, 40), "PV_Test_2020": (817, 50), "PV_Train_2020": (1_852, 90),
    "NPV_Test_2015": (700, 20), "NPV_Test_2020": (800, 20), "NPV_Train_2020": (1_800, 30),  # ≈
    "parks": (640, 300),  # made up: a dataset no manifest lists (pvdoi datasets add)
}


def write_lookalike_files(
    out_dir: str | Path, *, scale: float | None = None, seed: int = 0
) -> dict[str, list[Path]]:
    """Write the look-alike files of every dataset and return them per manifest dataset id.

    Args:
        out_dir: Folder to write into; its per-dataset sub-folders are replaced.
        scale: ``None`` for small test files (tens to hundreds of features per file),
            ``1.0`` for the real feature counts, any other factor scales those counts.
        seed: Seed of the random generator; the same arguments give identical bytes.

    Returns:
        Dataset id (the manifest's, and the never-seen one's folder) -> the files its repository
        publishes, in publication order.
    """
    out = Path(out_dir)
    writers = {
        "usa_cali_usgs_pv_2016": _bradbury, "uk_crowdsourced_pv_2020": _uk,
        "global_pv_inventory_sent2_spot_2021": _kruitwagen,
        "global_harmonized_large_solar_farms_2020": _dunnett, "chn_med_res_pv_2024": _chinapv,
        "ind_pv_solar_farms_2022": _india,
        "gb_solar_parks_2031": _parks,  # served, but in no manifest (its seed comes last: the six keep theirs)
    }
    result: dict[str, list[Path]] = {}
    for offset, (dataset_id, writer) in enumerate(writers.items()):
        folder = out / dataset_id
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        rng = np.random.default_rng([seed, offset])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result[dataset_id] = [folder / name for name in writer(rng, folder, lambda key: _n(key, scale))]
    marker = {"scale": scale, "seed": seed,
              "files": {k: [p.name for p in v] for k, v in result.items()}}
    (out / MARKER).write_text(json.dumps(marker, indent=1))
    return result


def _n(key: str, scale: float | None) -> int:
    real, small = _COUNTS[key]
    return small if scale is None else max(1, round(real * scale))
