"""Downloads that either leave a verified file or nothing.

A file is fetched into a temporary name in its target folder, hashed while it streams in,
checked against its published size and checksum, and only then renamed into place with
``os.replace`` (atomic on one file system). A dead mirror, a cut connection, a wrong checksum or
Ctrl-C removes the temporary file; mirrors are tried in turn, because one dead mirror should
not cost a user a day.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional, Sequence

from cnnlab.version import __version__
from cnnlab.data.registry import RemoteFile
from cnnlab.errors import DataError
from cnnlab.fsutil import remove_stale_temporaries, temporary_prefix

CHUNK_BYTES = 1 << 20
DEFAULT_TIMEOUT = 60.0  # seconds without data before a mirror counts as dead
TEMP_SUFFIX = ".part"


class DownloadFailed(DataError):
    """Every mirror failed for one file; ``failures`` says how, one line per mirror."""

    def __init__(self, remote: RemoteFile, failures: list[str]):
        self.remote = remote
        self.failures = failures
        super().__init__(f"could not download {remote.name}: " + "; ".join(failures) + ". Nothing was saved.")


class _MirrorFailed(Exception):
    pass


def mirror_url(mirror: str, name: str) -> str:
    return mirror if mirror.endswith(name) else mirror.rstrip("/") + "/" + name


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{max(size, 1) / 1e3:.0f} kB"


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
        if isinstance(error, str):
            return error
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(error, socket.gaierror):
        return f"host not found ({error})"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _stream_to(temp: Path, url: str, remote: RemoteFile, timeout: float) -> tuple[int, Optional[int], str, str]:
    """Write the response body to ``temp``; return (bytes, declared length, sha256, md5)."""
    request = urllib.request.Request(url, headers={"User-Agent": f"cnnlab/{__version__}"})
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    received = 0
    with urllib.request.urlopen(request, timeout=timeout) as response, open(temp, "wb") as out:
        header = response.headers.get("Content-Length")
        declared = int(header) if header and header.isdigit() else None
        if remote.size and declared is not None and declared != remote.size:
            raise _MirrorFailed(f"it offers {declared:,} bytes, but the published file has {remote.size:,}")
        while True:
            chunk = response.read(CHUNK_BYTES)
            if not chunk:
                break
            received += len(chunk)
            if remote.size and received > remote.size:
                raise _MirrorFailed(f"it sent more than the {remote.size:,} bytes of the published file")
            sha256.update(chunk)
            md5.update(chunk)
            out.write(chunk)
    return received, declared, sha256.hexdigest(), md5.hexdigest()


def _fetch(url: str, remote: RemoteFile, folder: Path, timeout: float) -> Path:
    try:
        # Named like every cnnlab temporary file (writer's pid and host), so that what a killed
        # download leaves is removed by the next one and never mistaken for data.
        handle, name = tempfile.mkstemp(prefix=f"{temporary_prefix()}{remote.name}.", suffix=TEMP_SUFFIX, dir=folder)
        os.close(handle)
    except OSError as error:
        raise DataError(f"cannot write to {folder} ({error.strerror or error}); give a writable folder "
                        f"with --data-dir or CNNLAB_DATA.") from None
    temp = Path(name)
    try:
        try:
            received, declared, sha256, md5 = _stream_to(temp, url, remote, timeout)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            raise _MirrorFailed(_reason(error)) from None
        if declared is not None and received != declared:
            raise _MirrorFailed(f"the connection closed after {received:,} of {declared:,} bytes")
        if remote.size and received != remote.size:
            raise _MirrorFailed(f"it sent {received:,} bytes, but the published file has {remote.size:,}")
        if remote.sha256 and sha256 != remote.sha256:
            raise _MirrorFailed(f"checksum mismatch: sha256 {sha256}, published {remote.sha256}")
        if not remote.sha256 and remote.md5 and md5 != remote.md5:
            raise _MirrorFailed(f"checksum mismatch: md5 {md5}, published {remote.md5}")
        target = folder / remote.name
        # No fsync: a file cut short by a power loss fails its checksum at the next load and
        # is downloaded again, since every local copy is verified before use.
        os.replace(temp, target)
        return target
    finally:
        # Reached with the temporary file still there on every failure, Ctrl-C included.
        temp.unlink(missing_ok=True)


def download_file(
    remote: RemoteFile,
    mirrors: Sequence[str],
    folder: str | Path,
    *,
    log: Optional[Callable[[str], None]] = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Fetch ``remote`` from the first mirror that serves it intact; return its path in ``folder``.

    Raises DownloadFailed (a DataError) naming every mirror and why it failed; nothing is
    left in ``folder`` then.
    """
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # removed again on failure
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create {folder} ({error.strerror or error}); give a writable folder with "
                        f"--data-dir or CNNLAB_DATA.") from None
    remove_stale_temporaries(folder, recursive=False)
    failures = []
    for mirror in mirrors:
        url = mirror_url(mirror, remote.name)
        if not url.startswith(("https://", "http://")):
            failures.append(f"{url}: not an http(s) address")
            continue
        if log:
            log(f"downloading {url} ({megabytes(remote.size)})" if remote.size else f"downloading {url}")
        try:
            path = _fetch(url, remote, folder, timeout)
        except _MirrorFailed as failure:
            failures.append(f"{url}: {failure}")
            if log:
                log(f"{url} failed: {failure}" + ("; trying the next mirror" if mirror != mirrors[-1] else ""))
            continue
        if log:
            log(f"saved {path} (checksum verified)")
        return path
    for path in created:
        try:
            path.rmdir()  # only while empty: a failed download leaves no trace
        except OSError:
            break
    raise DownloadFailed(remote, failures or ["no mirror is known for it"])
