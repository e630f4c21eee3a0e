"""Safe extraction: traversal, absolute paths, links and bombs are refused; nested archives work."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile

import pytest

from pvdoi.archive import extract_archive
from pvdoi.errors import ArchiveError

LIMIT = 10 * 2**20


def _zip(path, members: dict[str, bytes], *, symlink: str | None = None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return str(path)


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"])
def test_traversal_and_absolute_paths_are_refused(tmp_path, name):
    archive = _zip(tmp_path / "bad.zip", {"ok.txt": b"ok", name: b"pwned"})
    dest = tmp_path / "out"
    with pytest.raises(ArchiveError, match=r"bad.zip.*refused .*member path"):
        extract_archive(archive, str(dest), max_bytes=LIMIT, max_ratio=100)
    assert not (tmp_path / "evil.txt").exists()
    assert not os.path.exists("/tmp/evil.txt") or open("/tmp/evil.txt", "rb").read() != b"pwned"


def test_symlink_members_are_refused(tmp_path):
    archive = _zip(tmp_path / "link.zip", {"a.txt": b"a"}, symlink="passwd")
    with pytest.raises(ArchiveError, match="refused symbolic link member 'passwd'"):
        extract_archive(archive, str(tmp_path / "out"), max_bytes=LIMIT, max_ratio=100)


def test_decompression_bomb_is_refused_with_the_numbers(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (50 * 2**20)})
    with pytest.raises(ArchiveError, match=r"decompression bomb: \d+ compressed bytes expand to 52428800 bytes"):
        extract_archive(archive, str(tmp_path / "out"), max_bytes=LIMIT, max_ratio=100)
    assert not (tmp_path / "out" / "zeros.bin").exists()


def test_corrupt_zip_names_the_file(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 this is not a zip")
    with pytest.raises(ArchiveError, match=r"file 'broken.zip'.*corrupt or unreadable archive"):
        extract_archive(str(path), str(tmp_path / "out"), max_bytes=LIMIT, max_ratio=100)


def test_nested_zip_and_tar(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("deep/solar.geojson", b"{}")
    outer = _zip(tmp_path / "outer.zip", {"folder/inner.zip": inner.getvalue(), "top.txt": b"x"})
    members = extract_archive(outer, str(tmp_path / "out"), max_bytes=LIMIT, max_ratio=100)
    assert sorted(members) == ["folder/inner.zip.d/deep/solar.geojson", "top.txt"]
    assert (tmp_path / "out" / "folder" / "inner.zip.d" / "deep" / "solar.geojson").read_bytes() == b"{}"

    tar_path = tmp_path / "t.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        data = b"hello"
        info = tarfile.TarInfo("d/a.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("d/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../etc/passwd"
        tf.addfile(link)
    with pytest.raises(ArchiveError, match="refused link member 'd/link'"):
        extract_archive(str(tar_path), str(tmp_path / "tout"), max_bytes=LIMIT, max_ratio=100)
