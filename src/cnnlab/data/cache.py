"""Where dataset files are looked for, how a local copy is recognised, and when to download.

Lookup order: the folder the user named (``--data-dir``, else ``CNNLAB_DATA``), then the user
cache (``user_cache_dir``: ``$XDG_CACHE_HOME/cnnlab``, else the platform's own cache folder), then
the mirrors. In a named
folder a dataset's files may sit in ``<folder>/<dataset>/`` or directly in ``<folder>/``.
Every local copy is checked against the published checksums before it is used, so a damaged
file is never trained on; a copy that was re-compressed or unpacked (an ``.idx`` without
``.gz``, an extracted ``cifar-10-batches-py/``) is recognised by the checksums of its content.
Downloads go to ``<named folder or cache>/<dataset>/``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import platformdirs

from cnnlab.data.download import DEFAULT_TIMEOUT, DownloadFailed, download_file, megabytes, mirror_url
from cnnlab.data.registry import DatasetInfo, RemoteFile
from cnnlab.errors import DataError

ENV_DATA_DIR = "CNNLAB_DATA"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cnnlab`` where that is an absolute path, else the platform's convention
    (platformdirs): ``~/.cache/cnnlab`` on Linux, ``~/Library/Caches/cnnlab`` on macOS,
    ``%LOCALAPPDATA%\\cnnlab\\Cache`` on Windows."""
    # Read here on every platform, not only where platformdirs reads it (Linux, and macOS in recent
    # versions): it is the one way to move the cache, and the tests keep the real cache clean with
    # it. A relative value is ignored, as the XDG specification and platformdirs say.
    base = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(base):
        return Path(base) / "cnnlab"
    # appauthor=False: no "<author>" folder level on Windows (it would repeat "cnnlab").
    return Path(platformdirs.user_cache_dir("cnnlab", appauthor=False))


def named_data_dir(data_dir: str | Path | None = None) -> Optional[Path]:
    """The folder the user named: the argument, else ``$CNNLAB_DATA``, else None."""
    chosen = data_dir if data_dir not in (None, "") else os.environ.get(ENV_DATA_DIR) or None
    return Path(chosen).expanduser() if chosen is not None else None


def search_folders(dataset: str, data_dir: str | Path | None = None) -> list[Path]:
    """The folders looked in, in order."""
    folders = []
    named = named_data_dir(data_dir)
    if named is not None:
        folders += [named / dataset, named]
    folders.append(user_cache_dir() / dataset)
    return folders


def download_folder(dataset: str, data_dir: str | Path | None = None) -> Path:
    named = named_data_dir(data_dir)
    return (named if named is not None else user_cache_dir()) / dataset


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256, md5) of a file, read once."""
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def _md5_of(path: Path, gunzip: bool = False) -> str:
    md5 = hashlib.md5()
    with (gzip.open(path, "rb") if gunzip else open(path, "rb")) as handle:
        while chunk := handle.read(1 << 20):
            md5.update(chunk)
    return md5.hexdigest()


def check_file(path: Path, remote: RemoteFile) -> Optional[str]:
    """None when ``path`` is the published file (or a re-compressed copy of it), else why not."""
    if not remote.sha256 and not remote.md5 and not remote.content_md5:
        return None  # nothing published to check against
    size = path.stat().st_size
    if remote.size and size != remote.size:
        mismatch = f"it is {size:,} bytes, the published file {remote.size:,}"
    elif remote.sha256 or remote.md5:
        sha256, md5 = file_digests(path)
        if sha256 == remote.sha256 or (not remote.sha256 and md5 == remote.md5):
            return None
        mismatch = (f"its sha256 is {sha256}, the published file's {remote.sha256}" if remote.sha256
                    else f"its md5 is {md5}, the published file's {remote.md5}")
    else:
        mismatch = "its content differs from the published file's"
    if remote.content_md5:
        try:
            if _md5_of(path, gunzip=True) == remote.content_md5:
                return None  # the same data, compressed differently
        except (OSError, EOFError, zlib.error):
            pass
    return mismatch


def check_unpacked(path: Path, remote: RemoteFile) -> Optional[str]:
    """None when ``path`` is the decompressed file or extracted folder of ``remote``."""
    if remote.content_md5:
        md5 = _md5_of(path)
        return None if md5 == remote.content_md5 else f"its md5 is {md5}, the published content's {remote.content_md5}"
    for member, expected in remote.members:
        member_path = path.parent / member
        if not member_path.is_file():
            return f"it lacks {member}"
        md5 = _md5_of(member_path)
        if md5 != expected:
            return f"{member_path.name} has md5 {md5}, the published one {expected}"
    return None


@dataclass
class Lookup:
    """Where each file was found, and the copies that were found but did not match."""

    found: dict[str, Path]
    missing: list[RemoteFile]
    damaged: list[tuple[str, Path, str]]  # (published name, path, why it does not match)

    def damaged_copies(self, missing: list[RemoteFile]) -> list[tuple[Path, str]]:
        names = {r.name for r in missing}
        return [(path, reason) for name, path, reason in self.damaged if name in names]


def find_files(info: DatasetInfo, folders: list[Path]) -> Lookup:
    """Look for each of a dataset's files in ``folders``, verifying every candidate."""
    lookup = Lookup({}, [], [])
    for remote in info.files:
        path = None
        for folder in folders:
            candidate = folder / remote.name
            if candidate.is_file():
                reason = check_file(candidate, remote)
                if reason is None:
                    path = candidate
                    break
                lookup.damaged.append((remote.name, candidate, reason))
            unpacked = folder / remote.unpacked_name if remote.unpacked_name else None
            if unpacked is not None and (unpacked.is_dir() if remote.members else unpacked.is_file()):
                reason = check_unpacked(unpacked, remote)
                if reason is None:
                    path = unpacked
                    break
                lookup.damaged.append((remote.name, unpacked, reason))
        if path is None:
            lookup.missing.append(remote)
        else:
            lookup.found[remote.name] = path
    return lookup


def missing_message(info: DatasetInfo, missing: list[RemoteFile], folders: list[Path], target: Path,
                    damaged: list[tuple[Path, str]], why: str) -> str:
    """The paragraph that tells a user exactly which files to put where."""
    files = ", ".join(f"{r.name} ({megabytes(r.size)})" if r.size else r.name for r in missing)
    them = "it" if len(missing) == 1 else "them"
    text = f"Dataset '{info.name}' needs {files}, not found in {', '.join(str(f) for f in folders)}, and {why}."
    for path, reason in damaged:
        text += f" {path} was found but is not the published file ({reason}), so it was not used."
    text += f" Put {them} in {target}"
    if info.mirrors:
        text += f" (from {mirror_url(info.mirrors[0], missing[0].name)}"
        text += ", and the others from the same folder)" if len(missing) > 1 else ")"
    text += f", or point --data-dir (or CNNLAB_DATA) at the folder that holds {them}."
    return text


def ensure_files(
    info: DatasetInfo,
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    log: Optional[Callable[[str], None]] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Path]:
    """Each published file of ``info`` -> a verified local path, downloading what is missing."""
    folders = search_folders(info.name, data_dir)
    lookup = find_files(info, folders)
    if not lookup.missing:
        return lookup.found
    target = download_folder(info.name, data_dir)
    if not download:
        raise DataError(missing_message(info, lookup.missing, folders, target, lookup.damaged_copies(lookup.missing),
                                        "downloading is turned off"))
    for path, reason in lookup.damaged_copies(lookup.missing):
        if log:
            log(f"{path} is not the published file ({reason}); downloading it again")
    found = dict(lookup.found)
    for position, remote in enumerate(lookup.missing):
        try:
            found[remote.name] = download_file(remote, info.mirrors, target, log=log, timeout=timeout)
        except DownloadFailed as failure:
            still = lookup.missing[position:]
            raise DataError(missing_message(info, still, folders, target, lookup.damaged_copies(still),
                                            f"the download failed ({'; '.join(failure.failures)}; nothing was saved)")) from None
    return found


def cache_state(info: DatasetInfo, data_dir: str | Path | None = None) -> str:
    """One line for ``cnnlab datasets``: where the files are, or what a run would download.

    Checks names and sizes only (fast); a run verifies checksums before using anything.
    """
    if info.embedded:
        return "embedded (ships with scikit-learn; no download)"
    if not info.files:
        return "your files (path: in the spec)"
    folders = search_folders(info.name, data_dir)
    places = []
    for remote in info.files:
        where = None
        for folder in folders:
            candidate = folder / remote.name
            unpacked = folder / remote.unpacked_name if remote.unpacked_name else None
            if candidate.is_file() and (not remote.size or candidate.stat().st_size == remote.size or remote.content_md5) or unpacked is not None and unpacked.exists():
                where = folder
            if where is not None:
                break
        if where is None:
            mirror = info.mirrors[0] if info.mirrors else "nowhere (no mirror known)"
            return (f"missing: will download {megabytes(info.download_size)} from {mirror} "
                    f"to {download_folder(info.name, data_dir)}")
        places.append(where)
    unique = sorted({str(p) for p in places})
    return "cached at " + ", ".join(unique)
