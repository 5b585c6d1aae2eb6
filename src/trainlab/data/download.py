"""Fetching the official dataset files: mirrors, md5 checks, fast failure offline, safe archive extraction."""
from __future__ import annotations

import gzip
import hashlib
import http.client
import lzma
import os
import shutil
import socket
import stat
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import BinaryIO

from tqdm import tqdm

from ..errors import UserError

CHUNK = 1 << 16
MIRROR_HINT = "set a mirror with TRAINLAB_MIRROR=URL or mirror=URL"


@dataclass(frozen=True)
class Resource:
    """One official file: its local name, its md5 and its path relative to a mirror's base URL."""

    filename: str
    md5: str
    remote: str


def _idx_files(md5s: list[str]) -> list[Resource]:
    """The four MNIST-layout files, in the order train images, train labels, test images, test labels."""
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    return [Resource(name, md5, name) for name, md5 in zip(names, md5s)]


MIRRORS: dict[str, list[str]] = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    "cifar10": ["https://www.cs.toronto.edu/~kriz/"],
}

RESOURCES: dict[str, list[Resource]] = {
    "mnist": _idx_files(["f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcc3a52c45b",
                         "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"]),
    "fashion-mnist": _idx_files(["8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                                 "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"]),
    "cifar10": [Resource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "cifar-10-python.tar.gz")],
}


def md5sum(path: Path) -> str:
    """The file's md5 as lowercase hex, read in chunks so large archives do not fill memory."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _as_url(mirror: str) -> str:
    """A mirror as a base URL; a plain folder path becomes a file:// URL so local copies work too."""
    mirror = mirror.strip()
    if "://" not in mirror:
        mirror = Path(mirror).expanduser().resolve().as_uri()
    return mirror if mirror.endswith("/") else mirror + "/"


def mirrors_for(dataset: str, override: str = "") -> list[str]:
    """Base URLs to try: `override` (a config key) or $TRAINLAB_MIRROR (comma-separated allowed) first,
    then the official ones."""
    if dataset not in MIRRORS:
        raise UserError(f"no download source for dataset '{dataset}'; known: {', '.join(sorted(MIRRORS))}")
    chosen = override or os.environ.get("TRAINLAB_MIRROR", "")
    urls = [_as_url(m) for m in chosen.split(",") if m.strip()] + MIRRORS[dataset]
    return list(dict.fromkeys(urls))  # keeps the order, drops repeats


class _NetworkError(Exception):
    """This mirror could not deliver the file; the next one may."""


def _set_read_timeout(response: object, seconds: float) -> None:
    """urlopen has a single timeout, used to connect; widen it for the transfer once connected."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        sock.settimeout(seconds)


def _stream(url: str, out: BinaryIO, label: str, timeout: tuple[float, float]) -> str:
    """Copy `url` into the open file `out`; returns the md5 of what arrived."""
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout[0]) as response:
            _set_read_timeout(response, timeout[1])
            length = response.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                      file=sys.stderr, disable=size is None, leave=False) as bar:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    _write(out, chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as e:
        raise _NetworkError(f"HTTP {e.code}") from e
    except urllib.error.URLError as e:
        raise _NetworkError(str(e.reason)) from e
    except (OSError, ValueError, http.client.HTTPException) as e:  # timeouts, resets, bad replies, bad URLs
        raise _NetworkError(str(e) or type(e).__name__) from e
    if size is not None and received != size:
        raise _NetworkError(f"connection closed after {received} of {size} bytes")
    return digest.hexdigest()


class _DiskError(Exception):
    """Writing the local copy failed: no point trying another mirror."""


def _write(out: BinaryIO, chunk: bytes) -> None:
    """Write a chunk, telling disk failures (full, read-only) apart from network ones."""
    try:
        out.write(chunk)
    except OSError as e:
        raise _DiskError(str(e)) from e


def _fetch_one(url: str, resource: Resource, dest_dir: Path, timeout: tuple[float, float]) -> str | None:
    """Download `url` to dest_dir/resource.filename; None on success, the md5 found on a mismatch."""
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{resource.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            got = _stream(url, out, resource.filename, timeout)
        if got != resource.md5:
            return got
        os.replace(tmp, dest_dir / resource.filename)  # atomic: readers never see a partial file
        return None
    except _DiskError as e:
        raise UserError(f"could not write {dest_dir / resource.filename}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def download(resource: Resource, dest_dir: Path, mirrors: list[str], *,
             timeout: tuple[float, float] = (5.0, 30.0)) -> Path:
    """Fetch resource into dest_dir/resource.filename from the first mirror that delivers it intact.
    Each mirror gets `timeout` = (connect, read) seconds; a bad checksum moves on to the next mirror."""
    dest = Path(dest_dir) / resource.filename
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create folder {dest.parent} for {resource.filename}: {e}") from e
    failures, mismatch = [], ""
    for base in mirrors:
        url = _as_url(base) + resource.remote
        try:
            got = _fetch_one(url, resource, dest.parent, timeout)
        except _NetworkError as e:
            failures.append(f"{url}: {e}")
            continue
        if got is None:
            return dest
        mismatch = mismatch or f"checksum of {url} did not match: expected md5 {resource.md5}, got {got}"
    if mismatch:
        raise UserError(f"{mismatch}; put a good copy at {dest} or {MIRROR_HINT}")
    tried = "; ".join(failures) or "no mirror given"
    raise UserError(f"missing {dest} and could not download it ({tried}): "
                    f"put the file there yourself, or {MIRROR_HINT}")


def _present(folder: Path, resource: Resource) -> bool:
    """True if the file, or its un-gzipped twin (torchvision keeps both), is in `folder`."""
    if (folder / resource.filename).exists():
        return True
    return resource.filename.endswith(".gz") and (folder / resource.filename[:-3]).exists()


def ensure(dataset: str, folder: Path, *, mirror: str = "", allow_download: bool = True) -> None:
    """Make sure every RESOURCES[dataset] file exists in `folder`, downloading the missing ones.
    Existing files are not checksummed: a local copy may legitimately differ (e.g. re-encoded);
    readers validate their structure instead."""
    if dataset not in RESOURCES:
        raise UserError(f"no download source for dataset '{dataset}'; known: {', '.join(sorted(RESOURCES))}")
    folder = Path(folder)
    missing = [r for r in RESOURCES[dataset] if not _present(folder, r)]
    if not missing:
        return
    if not allow_download:
        more = f" (and {len(missing) - 1} more {dataset} files)" if len(missing) > 1 else ""
        raise UserError(f"missing {folder / missing[0].filename}{more}: put the official {dataset} files in "
                        f"{folder}, or enable download with download=true ({MIRROR_HINT})")
    urls = mirrors_for(dataset, mirror)
    for resource in missing:
        download(resource, folder, urls)


def _inside(path: str, base: str, root: str) -> bool:
    """True if `path`, taken relative to folder `base`, stays within folder `root` (all lexical)."""
    if os.path.isabs(path) or PureWindowsPath(path).drive or PureWindowsPath(path).root:
        return False
    full = os.path.normpath(os.path.join(base, path))
    return full == root or full.startswith(root + os.sep)


def _check_tar(members: list[tarfile.TarInfo], root: str, archive: Path) -> None:
    """Refuse members that would write outside `root` or that are device/special files."""
    for m in members:
        where = f"refusing to extract '{m.name}' from {archive}"
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise UserError(f"{where}: device and special files are not allowed")
        if not _inside(m.name, root, root):
            raise UserError(f"{where}: its path leads outside the target folder")
        if m.issym() or m.islnk():  # dataset archives hold none; a chain of links can defeat any lexical check
            raise UserError(f"{where}: it links to '{m.linkname}'; links are not extracted")


def _extract_tar(archive: Path, dest: Path) -> None:
    """Check every member first, then extract; the 'data' filter re-checks symlink chains on disk."""
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        _check_tar(members, os.path.realpath(dest), archive)
        try:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:
                tar.extractall(dest, members=members)
        except tarfile.FilterError as e:
            raise UserError(f"refusing to extract '{e.tarinfo.name}' from {archive}: {e}") from e


def _extract_zip(archive: Path, dest: Path) -> None:
    """Check every member first (zipfile would silently rewrite '..' names), then extract."""
    root = os.path.realpath(dest)
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            where = f"refusing to extract '{info.filename}' from {archive}"
            if not _inside(info.filename, root, root):
                raise UserError(f"{where}: its path leads outside the target folder")
            mode = info.external_attr >> 16
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                raise UserError(f"{where}: device and special files are not allowed")
        zf.extractall(dest)


def _move_into(tree: Path, target: Path, trash: Path) -> None:
    """Move the extracted tree into `target`, replacing same-named entries one rename at a time."""
    if not target.exists():
        os.replace(tree, target)
        return
    trash.mkdir()
    for entry in tree.iterdir():
        dest = target / entry.name
        if dest.exists() or dest.is_symlink():
            os.replace(dest, trash / entry.name)
        os.replace(entry, dest)


def safe_extract(archive: Path, target: Path) -> None:
    """Extract a .tar, .tar.gz/.tgz (or other tarfile compression) or .zip into `target`, refusing members
    that escape it. Extraction happens in a temporary folder beside `target` and is moved into place,
    so a refused or corrupt archive leaves nothing half-written."""
    archive, target = Path(archive), Path(target)
    name = archive.name.lower()
    is_zip = name.endswith(".zip")
    if not is_zip and not any(name.endswith(s) for s in (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")):
        raise UserError(f"{archive}: unsupported archive type (expected .tar, .tar.gz, .tgz or .zip)")
    if not archive.is_file():
        raise UserError(f"missing archive {archive}")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.extract-"))
    try:
        tree = staging / "tree"  # a plain mkdir, so the moved folder gets normal permissions
        tree.mkdir()
        try:
            (_extract_zip if is_zip else _extract_tar)(archive, tree)
        except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, lzma.LZMAError, EOFError,
                zlib.error) as e:
            raise UserError(f"cannot extract {archive}: corrupt or truncated archive ({e})") from None
        except OSError as e:  # disk full, permissions: the archive may be fine
            raise UserError(f"cannot extract {archive} into {target}: {e}") from e
        try:
            _move_into(tree, target, staging / "replaced")
        except OSError as e:
            raise UserError(f"cannot move the files extracted from {archive} into {target}: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
