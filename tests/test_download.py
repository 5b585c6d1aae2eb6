"""download.py against a real local HTTP server, file:// URLs and hand-made (hostile) archives."""
import hashlib
import io
import os
import tarfile
import threading
import time
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from trainlab.data import download as dl
from trainlab.data.download import Resource, download, ensure, md5sum, mirrors_for, safe_extract
from trainlab.errors import UserError

REFUSED = "http://127.0.0.1:9/"  # the discard port: nothing listens, so connecting is refused at once
PAYLOAD = os.urandom(200_000)


class Handler(SimpleHTTPRequestHandler):
    """Serves the fixture folder, plus two misbehaving paths for truncation and stalls."""

    def do_GET(self):
        if self.path.endswith("/short.bin"):  # promises more bytes than it sends
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            return
        if self.path.endswith("/stall.bin"):  # headers, then silence longer than the read timeout
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.flush()
            time.sleep(3)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """(folder served, base URL) of a threaded HTTP server on 127.0.0.1, stopped afterwards."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def serve(root: Path, name: str, data: bytes = PAYLOAD) -> Resource:
    (root / name).write_bytes(data)
    return Resource(name, hashlib.md5(data).hexdigest(), name)


def test_good_file_is_verified_and_renamed_into_place(server, tmp_path):
    root, base = server
    res = serve(root, "train-images-idx3-ubyte.gz")
    dest = tmp_path / "dest"
    path = download(res, dest, [base])
    assert path == dest / res.filename
    assert path.read_bytes() == PAYLOAD and md5sum(path) == res.md5
    assert sorted(p.name for p in dest.iterdir()) == [res.filename]  # no .part left behind


def test_checksum_mismatch_deletes_file_and_says_expected_and_got(server, tmp_path):
    root, base = server
    res = serve(root, "a.gz")
    bad = Resource("a.gz", "0" * 32, "a.gz")
    with pytest.raises(UserError) as e:
        download(bad, tmp_path / "dest", [base])
    msg = str(e.value)
    assert "checksum" in msg and f"expected md5 {'0' * 32}" in msg and f"got {res.md5}" in msg
    assert base + "a.gz" in msg and "\n" not in msg
    assert list((tmp_path / "dest").iterdir()) == []


def test_mismatch_on_first_mirror_falls_back_to_second(server, tmp_path):
    root, base = server
    res = serve(root, "a.gz")
    (root / "corrupt").mkdir()
    (root / "corrupt" / "a.gz").write_bytes(b"not it")
    assert download(res, tmp_path, [base + "corrupt/", base]).read_bytes() == PAYLOAD


@pytest.mark.parametrize("first", ["missing/", REFUSED])
def test_404_or_refused_first_mirror_then_good_second(server, tmp_path, first):
    root, base = server
    res = serve(root, "a.gz")
    first_url = base + first if first == "missing/" else first
    assert download(res, tmp_path, [first_url, base]).read_bytes() == PAYLOAD


def test_unreachable_mirror_fails_fast_with_guidance(tmp_path):
    res = Resource("t10k-labels-idx1-ubyte.gz", "0" * 32, "t10k-labels-idx1-ubyte.gz")
    start = time.monotonic()
    with pytest.raises(UserError) as e:
        download(res, tmp_path, [REFUSED])
    assert time.monotonic() - start < 10
    msg = str(e.value)
    assert str(tmp_path / res.filename) in msg and "put the file there" in msg
    assert "TRAINLAB_MIRROR=URL" in msg and "mirror=URL" in msg and "\n" not in msg


def test_ensure_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setitem(dl.MIRRORS, "mnist", [REFUSED])  # hermetic: never reach the real mirrors
    monkeypatch.delenv("TRAINLAB_MIRROR", raising=False)
    start = time.monotonic()
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz.*TRAINLAB_MIRROR"):
        ensure("mnist", tmp_path / "MNIST" / "raw")
    assert time.monotonic() - start < 10


def test_truncated_transfer_is_not_kept(server, tmp_path):
    _, base = server
    with pytest.raises(UserError, match="10 of 1000 bytes"):
        download(Resource("short.bin", "0" * 32, "short.bin"), tmp_path / "dest", [base])
    assert list((tmp_path / "dest").iterdir()) == []


def test_stalled_server_hits_the_read_timeout(server, tmp_path):
    _, base = server
    start = time.monotonic()
    with pytest.raises(UserError, match="stall.bin"):
        download(Resource("stall.bin", "0" * 32, "stall.bin"), tmp_path / "dest", [base], timeout=(2.0, 0.5))
    assert time.monotonic() - start < 2.5
    assert list((tmp_path / "dest").iterdir()) == []


def test_mirror_precedence(monkeypatch, tmp_path):
    official = dl.MIRRORS["mnist"]
    monkeypatch.delenv("TRAINLAB_MIRROR", raising=False)
    assert mirrors_for("mnist") == official
    monkeypatch.setenv("TRAINLAB_MIRROR", "http://a.example/m, http://b.example/m/")
    assert mirrors_for("mnist") == ["http://a.example/m/", "http://b.example/m/", *official]
    assert mirrors_for("mnist", "http://c.example/") == ["http://c.example/", *official]
    assert mirrors_for("mnist", official[1]) == [official[1], official[0]]  # no repeats
    assert mirrors_for("mnist", str(tmp_path)) == [tmp_path.as_uri() + "/", *official]
    with pytest.raises(UserError, match="no download source for dataset 'nope'"):
        mirrors_for("nope")


def test_env_mirror_is_used_by_ensure(server, tmp_path, monkeypatch):
    root, base = server
    res = serve(root, "only.bin")
    monkeypatch.setitem(dl.RESOURCES, "mnist", [res])
    monkeypatch.setitem(dl.MIRRORS, "mnist", [REFUSED])
    monkeypatch.setenv("TRAINLAB_MIRROR", base)
    ensure("mnist", tmp_path / "raw")
    assert (tmp_path / "raw" / "only.bin").read_bytes() == PAYLOAD


def test_file_url(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    res = serve(src, "a.gz")
    assert download(res, tmp_path / "dest", [src.as_uri()]).read_bytes() == PAYLOAD


def test_ensure_leaves_existing_files_alone(tmp_path, monkeypatch):
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.gz").write_bytes(b"a re-encoded local copy")
    (folder / "b").write_bytes(b"un-gzipped twin")
    monkeypatch.setitem(dl.RESOURCES, "mnist", [Resource("a.gz", "0" * 32, "a.gz"), Resource("b.gz", "1" * 32, "b.gz")])
    monkeypatch.setitem(dl.MIRRORS, "mnist", [REFUSED])
    before = os.stat(folder / "a.gz").st_mtime_ns
    ensure("mnist", folder)
    assert (folder / "a.gz").read_bytes() == b"a re-encoded local copy"
    assert os.stat(folder / "a.gz").st_mtime_ns == before
    assert sorted(p.name for p in folder.iterdir()) == ["a.gz", "b"]


def test_ensure_without_download_names_file_and_remedies(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    with pytest.raises(UserError) as e:
        ensure("mnist", folder, allow_download=False)
    msg = str(e.value)
    assert str(folder / "train-images-idx3-ubyte.gz") in msg and "3 more" in msg
    assert f"in {folder}" in msg and "download=true" in msg and "TRAINLAB_MIRROR=URL" in msg
    assert not folder.exists()


def test_ensure_downloads_missing_from_mirror(server, tmp_path, monkeypatch):
    root, base = server
    resources = [serve(root, f"f{i}.gz", bytes([i]) * 1000) for i in range(3)]
    monkeypatch.setitem(dl.RESOURCES, "fashion-mnist", resources)
    monkeypatch.setitem(dl.MIRRORS, "fashion-mnist", [REFUSED])
    monkeypatch.delenv("TRAINLAB_MIRROR", raising=False)
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "f1.gz").write_bytes(b"kept")
    ensure("fashion-mnist", folder, mirror=base)
    assert (folder / "f0.gz").read_bytes() == bytes([0]) * 1000
    assert (folder / "f1.gz").read_bytes() == b"kept"
    assert md5sum(folder / "f2.gz") == resources[2].md5


def test_official_resources_table():
    names = [r.filename for r in dl.RESOURCES["mnist"]]
    assert names == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                     "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert dl.RESOURCES["mnist"][0].md5 == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert dl.RESOURCES["fashion-mnist"][3].md5 == "bb300cfdad3c16e7a12a480ee83cd310"
    assert dl.RESOURCES["cifar10"] == [Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                                                "cifar-10-python.tar.gz")]
    assert all(len(r.md5) == 32 for rs in dl.RESOURCES.values() for r in rs)


# --- safe_extract ---------------------------------------------------------------------------------

def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def file_member(name: str, data: bytes = b"hello") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def link_member(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".extract-" in p.name)


def test_good_tar_gz_extracts(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", [file_member("cifar-10-batches-py/data_batch_1", b"x" * 5000),
                                               file_member("cifar-10-batches-py/readme.html")])
    target = tmp_path / "data"
    safe_extract(archive, target)
    assert (target / "cifar-10-batches-py" / "data_batch_1").read_bytes() == b"x" * 5000
    assert (target / "cifar-10-batches-py" / "readme.html").read_bytes() == b"hello"
    assert leftovers(tmp_path) == []


def test_extract_into_existing_folder_keeps_other_files(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "other.txt").write_text("mine")
    archive = make_tar(target / "a.tgz", [file_member("new.txt")])  # the archive sits inside target
    safe_extract(archive, target)
    assert (target / "new.txt").read_bytes() == b"hello" and (target / "other.txt").read_text() == "mine"
    safe_extract(archive, target)  # again: the entry is replaced, not an error
    assert sorted(p.name for p in target.iterdir()) == ["a.tgz", "new.txt", "other.txt"]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("member, why", [
    (file_member("../evil.txt"), "outside"),
    (file_member("ok/../../evil.txt"), "outside"),
    (file_member("/tmp/evil-absolute.txt"), "outside"),
    (link_member("link", "../../evil.txt"), "links to '../../evil.txt'"),
    (link_member("link", "/etc/passwd"), "links to '/etc/passwd'"),
    (link_member("hard", "../evil.txt", tarfile.LNKTYPE), "links to '../evil.txt'"),
])
def test_escaping_tar_members_are_refused(tmp_path, member, why):
    archive = make_tar(tmp_path / "bad.tar", [file_member("fine.txt"), member], mode="w")
    target = tmp_path / "sub" / "data"
    with pytest.raises(UserError) as e:
        safe_extract(archive, target)
    msg = str(e.value)
    assert f"'{member[0].name}'" in msg and str(archive) in msg and why in msg
    assert not target.exists() and not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/evil-absolute.txt").exists()
    assert leftovers(tmp_path / "sub") == []


def test_device_member_is_refused(tmp_path):
    info = tarfile.TarInfo("dev/null")
    info.type = tarfile.CHRTYPE
    archive = make_tar(tmp_path / "dev.tar", [(info, b"")], mode="w")
    with pytest.raises(UserError, match="'dev/null'.*device"):
        safe_extract(archive, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_zip_with_parent_member_is_refused(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", "ok")
        zf.writestr("../x", "evil")
    with pytest.raises(UserError, match=r"'\.\./x' from .*bad\.zip"):
        safe_extract(archive, tmp_path / "sub" / "data")
    assert not (tmp_path / "sub" / "data").exists() and not (tmp_path / "sub" / "x").exists()
    assert leftovers(tmp_path / "sub") == []


def test_good_zip_extracts(tmp_path):
    archive = tmp_path / "good.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("d/a.txt", "alpha")
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "d" / "a.txt").read_text() == "alpha"


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_truncated_archive_names_the_archive(tmp_path, suffix):
    whole = tmp_path / f"whole{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("big.bin", os.urandom(100_000))
    else:
        make_tar(whole, [file_member("big.bin", os.urandom(100_000)), file_member("after.txt")])
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(UserError, match=f"{cut}.*corrupt or truncated"):
        safe_extract(cut, tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_unsupported_or_missing_archive(tmp_path):
    with pytest.raises(UserError, match="unsupported archive type"):
        safe_extract(tmp_path / "a.rar", tmp_path / "out")
    with pytest.raises(UserError, match="missing archive"):
        safe_extract(tmp_path / "a.tar.gz", tmp_path / "out")
