"""The look-alike repository server speaks the Zenodo, figshare and GitHub APIs and fails on demand;
the look-alike files have the names, schemas, geometry types and hostile content of the real ones."""

from __future__ import annotations

import hashlib
import json
import time
import zipfile

import numpy as np
import pyogrio
import pytest
import shapely
import urllib3
from urllib3.exceptions import ProtocolError

from pvdoi.testing.lookalike import write_lookalike_files
from pvdoi.testing.reposerver import RepoServer

UK = "uk_crowdsourced_pv_2020"
BRADBURY = "usa_cali_usgs_pv_2016"
CHINA = "chn_med_res_pv_2024"
INDIA_NAME = "solar_farms_india_2021_merged_simplified.geojson"
CHINA_API = "/github-api/repos/qingfengxitu/ChinaPV/contents"


@pytest.fixture(scope="module")
def lookalike(tmp_path_factory):
    out = tmp_path_factory.mktemp("lookalike")
    return out, write_lookalike_files(out)


@pytest.fixture
def server(lookalike):
    with RepoServer(lookalike[0]) as srv:
        yield srv


@pytest.fixture(scope="module")
def http():
    return urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(10))


def _get(http, server, path, **kw) -> urllib3.BaseHTTPResponse:
    return http.request("GET", server.base_url + path, **kw)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# -- the look-alike files -----------------------------------------------------------------------
def _comparable(path):
    """A file's bytes; for a zip, its members' bytes, with each GeoPackage's SQLite change counters masked.

    GDAL builds a GeoPackage's R-tree in a background thread, so the number of SQLite transactions (counted in
    header bytes 24-27 and 92-95) varies from run to run; every other byte is reproducible.
    """
    if path.suffix != ".zip":
        return path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    for name, data in members.items():
        if name.endswith(".gpkg"):
            members[name] = data[:24] + bytes(4) + data[28:92] + bytes(4) + data[96:]
    return members


def test_lookalike_is_deterministic_and_publishes_excluded_files_too(lookalike, tmp_path):
    out, files = lookalike
    again = write_lookalike_files(tmp_path)
    for ds, paths in files.items():
        assert [p.name for p in again[ds]] == [p.name for p in paths]
        assert all(_comparable(a) == _comparable(b) for a, b in zip(paths, again[ds])), ds
    names = {ds: [p.name for p in paths] for ds, paths in files.items()}
    assert {"SolarArrayPolygons.mat", "polygonVertices_PixelCoordinates.csv"} <= set(names[BRADBURY])
    assert "ukpvgeo_points.csv" in names[UK]
    assert "trn_tiles.geojson" in names["global_pv_inventory_sent2_spot_2021"]
    assert names["global_harmonized_large_solar_farms_2020"] == ["global_wind_solar_2020.zip"]
    assert {"NPV_Train_2020.shp", "PV_Test_2015.CPG", "README.md"} <= set(names[CHINA])
    other = write_lookalike_files(tmp_path / "seed1", seed=1)
    assert other[UK][0].read_bytes() != files[UK][0].read_bytes()


def test_scale_multiplies_the_real_counts(tmp_path):
    files = write_lookalike_files(tmp_path, scale=0.002)
    assert pyogrio.read_info(files[BRADBURY][0])["features"] == round(19_433 * 0.002)
    assert pyogrio.read_info(files[CHINA][0])["features"] == round(687 * 0.002)


def test_bradbury_polygons_have_all_attributes_and_rooftop_sizes(lookalike):
    path = lookalike[1][BRADBURY][0]
    info = pyogrio.read_info(path)
    assert (info["geometry_type"], info["crs"], info["features"]) == ("Polygon", "EPSG:4326", 120)
    df = pyogrio.read_dataframe(path)
    assert {"polygon_id", "city", "area_meters", "image_name", "datum", "jaccard_index",
            "nw_corner_of_image_latitude", "polygon_vertices_pixels"} <= set(df.columns)
    assert set(df.city) <= {"Fresno", "Stockton", "Modesto", "Oxnard"}
    assert all(len(json.loads(v)) >= 5 for v in df.polygon_vertices_pixels)
    area = df.to_crs("EPSG:6933").area
    assert 10 < area.median() < 200 and np.allclose(area, df.area_meters, rtol=0.5)


def test_uk_file_is_mixed_and_hostile(lookalike):
    path = lookalike[1][UK][0]
    raw = path.read_bytes()
    assert b"Caf\xe9 Solar Roof" in raw and b"\\ud83d" in raw
    info = pyogrio.read_info(path)
    assert (info["geometry_type"], info["crs"], info["features"]) == ("Unknown", "EPSG:4326", 300)
    assert {"capacity_repd_MWp", "area_sqm", "repd_operational_date", "match_rule"} <= set(info["fields"])
    # Observed pyogrio 0.13 / GDAL 3.12 behaviour: decoding as UTF-8 fails on the raw ISO-8859-1 byte ...
    with pytest.raises(UnicodeDecodeError), pytest.warns(RuntimeWarning, match="Several features with id"):
        pyogrio.read_dataframe(path)
    # ... while a single-byte encoding reads everything (valid UTF-8 values turn into mojibake).
    with pytest.warns(RuntimeWarning, match="Several features with id"):
        df = pyogrio.read_dataframe(path, encoding="ISO-8859-1")
    names = set(df.repd_site_name.dropna())
    assert "Café Solar Roof" in names and "Solar \xef\xbf\xbd Farm" in names  # lone surrogate -> U+FFFD
    assert "Ynys MÃ´n Solar Farm" in names
    types = df.geom_type.value_counts(dropna=False)
    assert {"Point", "Polygon", "MultiPolygon", "LineString", "GeometryCollection"} <= set(types.index)
    assert df.geometry.isna().sum() == 1 and df.geometry.is_empty.sum() == 2
    assert shapely.has_z(df.geometry).sum() >= 2 and (~df.geometry.is_valid).sum() >= 1
    assert df.drop(columns="geometry").duplicated().sum() >= 1 and len(df) == 300
    # The Arrow path keeps the raw bytes: a reader can repair them itself.
    with pytest.warns(RuntimeWarning, match="Several features with id"):
        _, table = pyogrio.read_arrow(path)
    values = table["repd_site_name"].cast("binary").to_pylist()
    assert b"Caf\xe9 Solar Roof" in values


def test_kruitwagen_predictions_and_labels(lookalike):
    paths = {p.name: p for p in lookalike[1]["global_pv_inventory_sent2_spot_2021"]}
    df = pyogrio.read_dataframe(paths["predicted_polygons.geojson"])
    assert {"unique_id", "area", "confidence", "install_date", "iso-3166-1", "iso-3166-2",
            "capacity_mw", "LC_CLC300_1992", "LC_CLC300_2018"} <= set(df.columns)
    assert set(df.confidence) <= set("ABCD") and "<2016-06" in set(df.install_date)
    assert df.install_date.dropna().str.fullmatch(r"<2016-06|\d{4}-\d{2}-\d{2}").all()
    area = df.to_crs("EPSG:6933").area
    assert 1e4 < area.median() < 1e5 and area.max() < 2e6
    assert pyogrio.read_info(paths["trn_tiles.geojson"])["geometry_type"] == "Polygon"
    counts = {n: pyogrio.read_info(p)["features"] for n, p in paths.items()}
    assert counts["predicted_polygons.geojson"] == 200 and counts["test_polygons.geojson"] == 40


def test_dunnett_zip_holds_every_variant(lookalike):
    path = lookalike[1]["global_harmonized_large_solar_farms_2020"][0]
    names = set(zipfile.ZipFile(path).namelist())
    inner = "global_wind_solar_2020/"
    assert {inner + n for n in ("solar_WGS84.gpkg", "solar_WGS84.shp", "solar_WGS84.dbf", "solar_WGS84.csv",
                                "solar_EckertIV.gpkg", "wind_WGS84.gpkg", "wind_EckertIV.gpkg")} <= names
    vsi = f"/vsizip/{path}/{inner}"
    gpkg, shp = pyogrio.read_info(vsi + "solar_WGS84.gpkg"), pyogrio.read_info(vsi + "solar_WGS84.shp")
    assert list(gpkg["fields"]) == ["sol_id", "GID_0", "panels", "panel.area", "landscape.area", "water",
                                    "urban", "power"]
    assert "landscape." in shp["fields"] and gpkg["features"] == shp["features"] == 150
    assert pyogrio.read_info(vsi + "solar_EckertIV.gpkg")["crs"].endswith('AUTHORITY["ESRI","54012"]]')


def test_chinapv_shapefiles_are_3d_with_differing_schemas(lookalike):
    paths = {p.name: p for p in lookalike[1][CHINA]}
    infos = {n: pyogrio.read_info(paths[f"{n}.shp"]) for n in ("PV_Test_2015", "PV_Test_2020", "PV_Train_2020")}
    assert {(i["geometry_type"], i["crs"]) for i in infos.values()} == {("Polygon Z", "EPSG:4326")}
    assert [i["features"] for i in infos.values()] == [40, 50, 90]
    assert len({tuple(i["fields"]) for i in infos.values()}) == 3
    assert {"OID_", "Name", "FolderPath", "landcover", "area"} <= set(infos["PV_Test_2015"]["fields"])
    assert {"FID_PV_202", "Shape_Leng", "Shape_Area"} <= set(infos["PV_Test_2020"]["fields"])
    provinces = pyogrio.read_dataframe(paths["PV_Test_2020.shp"]).Province
    assert provinces.isin(["青海", "甘肃", "宁夏", "内蒙古", "河北", "山东", "新疆", "江苏"]).all()


def test_india_is_the_real_file(lookalike, india_sample):
    path = lookalike[1]["ind_pv_solar_farms_2022"][0]
    assert path.read_bytes() == india_sample.read_bytes()
    info = pyogrio.read_info(path)
    assert (info["features"], info["geometry_type"]) == (1363, "MultiPolygon")


# -- the APIs -----------------------------------------------------------------------------------
def test_env_points_at_the_server(server):
    env = server.env()
    assert env["PVDOI_ZENODO_URL"] == server.base_url + "/zenodo"
    assert set(env) == {"PVDOI_ZENODO_URL", "PVDOI_FIGSHARE_API_URL", "PVDOI_GITHUB_API_URL",
                        "PVDOI_GITHUB_RAW_URL"}


@pytest.mark.parametrize("record_id", [4059881, 5005868])
def test_zenodo_record_checksums_match_the_bytes(server, http, record_id):
    record = _get(http, server, f"/zenodo/api/records/{record_id}").json()
    assert record["id"] == record_id and record["doi"] == f"10.5281/zenodo.{record_id}"
    assert {"title", "creators", "license", "version", "publication_date"} <= set(record["metadata"])
    assert record["metadata"]["license"] == {"id": "cc-by-4.0"}
    for f in record["files"]:
        assert f["links"]["self"] == f"{server.base_url}/zenodo/api/records/{record_id}/files/{f['key']}/content"
        data = http.request("GET", f["links"]["self"]).data
        assert (len(data), f"md5:{_md5(data)}") == (f["size"], f["checksum"])
    keys = [f["key"] for f in record["files"]]
    assert "ukpvgeo_geometries.geojson" in keys or "cv_tiles.geojson" in keys


def test_zenodo_concept_record_redirects_to_the_latest(server, http):
    resp = _get(http, server, "/zenodo/api/records/5005867", redirect=False)
    assert resp.status == 301 and resp.headers["Location"] == server.base_url + "/zenodo/api/records/5005868"
    assert _get(http, server, "/zenodo/api/records/5005867", retries=2).json()["id"] == 5005868


@pytest.mark.parametrize("article,version", [(3385780, 4), (11310269, 6)])
def test_figshare_article_checksums_match_the_bytes(server, http, article, version):
    pinned = _get(http, server, f"/figshare/v2/articles/{article}/versions/{version}").json()
    assert pinned == _get(http, server, f"/figshare/v2/articles/{article}").json()
    assert pinned["version"] == version and pinned["doi"] == f"10.6084/m9.figshare.{article}.v{version}"
    assert {"name", "url"} <= set(pinned["license"]) and pinned["authors"][0]["full_name"]
    assert 1 <= len(pinned["files"]) <= 10
    for f in pinned["files"]:
        assert f["is_link_only"] is False and f["download_url"].endswith(f"/figshare/ndownloader/files/{f['id']}")
        data = http.request("GET", f["download_url"]).data
        assert (len(data), _md5(data), _md5(data)) == (f["size"], f["supplied_md5"], f["computed_md5"])
    assert _get(http, server, f"/figshare/v2/articles/{article}/versions/{version - 1}").status == 404


def test_figshare_file_list_is_complete_and_paginated(server, http):
    for i in range(7):
        server.add_file(BRADBURY, f"extra_{i}.txt", b"x" * i)
    article = _get(http, server, "/figshare/v2/articles/3385780/versions/4").json()
    assert len(article["files"]) == 10
    walked, page = [], 1
    while batch := _get(http, server, f"/figshare/v2/articles/3385780/files?page={page}&page_size=2").json():
        assert len(batch) <= 2
        walked += batch
        page += 1
    assert page == 8 and len(walked) == 13 and walked[:10] == article["files"]
    assert [f["name"] for f in walked][-7:] == [f"extra_{i}.txt" for i in range(7)]
    assert len(_get(http, server, "/figshare/v2/articles/3385780/files").json()) == 10
    assert _get(http, server, "/figshare/v2/articles/3385780/files?page=0").status == 400


@pytest.mark.parametrize("suffix", ["?ref=main", "/?ref=main", "", "/"])
def test_github_directory_listing_shas_match_raw_bytes(server, http, suffix):
    listing = _get(http, server, CHINA_API + suffix).json()
    assert {e["name"] for e in listing} >= {"PV_Test_2015.shp", "NPV_Test_2015.shp", "README.md"}
    for entry in listing[:6]:
        assert entry["type"] == "file" and entry["path"] == entry["name"]
        assert entry["download_url"] == f"{server.base_url}/github-raw/qingfengxitu/ChinaPV/main/{entry['name']}"
        data = http.request("GET", entry["download_url"]).data
        assert (len(data), _blob_sha(data)) == (entry["size"], entry["sha"])


def test_github_single_file_and_parent_directory(server, http, india_sample):
    api = "/github-api/repos/microsoft/solar-farms-mapping/contents"
    entry = _get(http, server, f"{api}/data/{INDIA_NAME}?ref=main").json()
    assert entry["path"] == f"data/{INDIA_NAME}" and entry["size"] == 1_611_052
    assert entry["sha"] == _blob_sha(india_sample.read_bytes())
    assert http.request("GET", entry["download_url"]).data == india_sample.read_bytes()
    assert [e["name"] for e in _get(http, server, f"{api}/data?ref=main").json()] == [INDIA_NAME]
    assert _get(http, server, f"{api}?ref=main").json()[0] | {"sha": None} == {
        "name": "data", "path": "data", "size": 0, "sha": None, "type": "dir", "download_url": None,
        "url": f"{server.base_url}{api}/data?ref=main"}


@pytest.mark.parametrize("path", [
    "/zenodo/api/records/1", "/zenodo/api/records/4059881/files/nope.csv/content",
    "/figshare/v2/articles/1/versions/1", "/figshare/ndownloader/files/1",
    "/github-api/repos/nobody/nothing/contents?ref=main", CHINA_API + "/nope.shp?ref=main",
    CHINA_API + "?ref=dev", "/github-raw/qingfengxitu/ChinaPV/main/nope.shp", "/elsewhere",
])
def test_unknown_things_answer_404_with_json(server, http, path):
    resp = _get(http, server, path)
    assert resp.status == 404 and resp.headers["Content-Type"].startswith("application/json")
    assert "message" in resp.json()


def test_request_log_counts(server, http):
    _get(http, server, "/zenodo/api/records/4059881")
    _get(http, server, "/zenodo/api/records/4059881")
    assert server.count("records/4059881") == 2 and server.requests[-1] == ("GET", "/zenodo/api/records/4059881")


# -- mutations ----------------------------------------------------------------------------------
def test_replace_remove_and_misreport_files(server, http):
    server.replace_file(UK, "ukpvgeo_points.csv", b"lat,lon\n1,2\n")
    files = {f["key"]: f for f in _get(http, server, "/zenodo/api/records/4059881").json()["files"]}
    assert (files["ukpvgeo_points.csv"]["size"], files["ukpvgeo_points.csv"]["checksum"]) == (
        12, f"md5:{_md5(b'lat,lon' + chr(10).encode() + b'1,2' + chr(10).encode())}")
    assert http.request("GET", files["ukpvgeo_points.csv"]["links"]["self"]).data == b"lat,lon\n1,2\n"

    server.set_published_checksum(UK, "ukpvgeo_geometries.geojson", "0" * 32)
    files = {f["key"]: f for f in _get(http, server, "/zenodo/api/records/4059881").json()["files"]}
    data = http.request("GET", files["ukpvgeo_geometries.geojson"]["links"]["self"]).data
    assert files["ukpvgeo_geometries.geojson"]["checksum"] == "md5:" + "0" * 32 != f"md5:{_md5(data)}"

    server.set_published_checksum(CHINA, "README.md", "f" * 40)
    assert _get(http, server, CHINA_API + "/README.md").json()["sha"] == "f" * 40

    article = _get(http, server, "/figshare/v2/articles/3385780").json()
    mat = next(f for f in article["files"] if f["name"] == "SolarArrayPolygons.mat")
    server.remove_file(BRADBURY, "SolarArrayPolygons.mat")
    names = [f["name"] for f in _get(http, server, "/figshare/v2/articles/3385780").json()["files"]]
    assert "SolarArrayPolygons.mat" not in names and http.request("GET", mat["download_url"]).status == 404
    with pytest.raises(KeyError, match="publishes no file 'nope'"):
        server.remove_file(BRADBURY, "nope")


# -- faults and ranges --------------------------------------------------------------------------
def test_status_fault_with_retry_after_fires_once(server, http):
    server.inject(r"records/4059881$", "status", status=503, retry_after=2)
    resp = _get(http, server, "/zenodo/api/records/4059881")
    assert (resp.status, resp.headers["Retry-After"]) == (503, "2")
    assert _get(http, server, "/zenodo/api/records/4059881").status == 200
    assert _get(http, server, "/zenodo/api/records/5005868").status == 200


def test_forever_faults_until_cleared(server, http):
    server.inject("ndownloader", "status", status=429, times=-1)
    assert [_get(http, server, "/figshare/ndownloader/files/5000001").status for _ in range(3)] == [429] * 3
    server.clear_faults()
    assert _get(http, server, "/figshare/ndownloader/files/5000001").status == 200
    with pytest.raises(ValueError, match="allowed: status, reset"):
        server.inject("x", "explode")


def test_truncate_fault_raises_incomplete_read(server, http):
    server.inject("github-raw", "truncate", nbytes=100)
    url = f"/github-raw/microsoft/solar-farms-mapping/main/data/{INDIA_NAME}"
    with pytest.raises(ProtocolError, match="IncompleteRead"):
        _get(http, server, url)
    assert len(_get(http, server, url).data) == 1_611_052


def test_reset_fault_resets_the_connection(server, http):
    server.inject("github-raw", "reset", nbytes=10)
    with pytest.raises(ProtocolError) as caught:
        _get(http, server, f"/github-raw/microsoft/solar-farms-mapping/main/data/{INDIA_NAME}")
    assert isinstance(caught.value.__context__ or caught.value.args[-1], ConnectionResetError)


def test_corrupt_fault_keeps_the_length(server, http, india_sample):
    server.inject("github-raw", "corrupt")
    data = _get(http, server, f"/github-raw/microsoft/solar-farms-mapping/main/data/{INDIA_NAME}").data
    assert len(data) == 1_611_052 and data != india_sample.read_bytes()


def test_slow_fault_delays(server, http):
    server.inject("records/4059881", "slow", delay=0.3)
    start = time.monotonic()
    assert _get(http, server, "/zenodo/api/records/4059881").status == 200
    assert time.monotonic() - start >= 0.3


def test_range_requests_resume_a_truncated_download(server, http, india_sample):
    url = f"/github-raw/microsoft/solar-farms-mapping/main/data/{INDIA_NAME}"
    whole = india_sample.read_bytes()
    server.inject("github-raw", "truncate", nbytes=1000)
    first = _get(http, server, url, preload_content=False)
    got = b""
    with pytest.raises(ProtocolError):
        for chunk in first.stream(256):
            got += chunk
    rest = _get(http, server, url, headers={"Range": f"bytes={len(got)}-"})
    assert rest.status == 206 and rest.headers["Content-Range"] == f"bytes {len(got)}-{len(whole) - 1}/{len(whole)}"
    assert got + rest.data == whole
    part = _get(http, server, url, headers={"Range": "bytes=10-19"})
    assert (part.status, part.data) == (206, whole[10:20])
    assert _get(http, server, url, headers={"Range": "bytes=-5"}).data == whole[-5:]
    assert _get(http, server, url, headers={"Range": f"bytes={len(whole)}-"}).status == 416
