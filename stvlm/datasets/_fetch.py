"""Downloads: the cache folder, verified atomic fetches, and where each public file lives.

A fetched file is looked for first in the folder the user named, then in the data folder
(:func:`~stvlm.datasets.data_home`, e.g. ``../shared/data``), then in the cache
(:func:`get_data_home`); it is downloaded only when none has it, into a temporary file
beside its destination that is checked (size, checksum, then what the caller knows of
its contents) before it is renamed into place, so no partial or wrong file survives a
failure and nothing is downloaded twice.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import socket
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

__all__ = ["CACHE_ENV_VAR", "FetchError", "RemoteFile", "get_data_home", "resolve"]

CACHE_ENV_VAR = "STVLM_CACHE_DIR"
_CHUNK = 1 << 20


class FetchError(OSError):
    """A dataset file could not be obtained: offline, not found, truncated or not the expected file.

    The message names the URL, the file expected and where to put a manual copy.

    Examples
    --------
    >>> from stvlm.datasets import FetchError
    >>> issubclass(FetchError, OSError)
    True
    """


def get_data_home(data_home=None) -> pathlib.Path:
    """The folder where stvlm keeps the datasets it downloads (created if missing).

    Parameters
    ----------
    data_home : str or path-like, default=None
        Use this folder. ``None``: the environment variable ``STVLM_CACHE_DIR`` if set,
        else ``$XDG_CACHE_HOME/stvlm``, else ``~/.cache/stvlm``.

    Returns
    -------
    pathlib.Path
        The folder, resolved. Files keep the layout of the data folder:
        ``pems08/PEMS08.npz``, ``ett/ETTh1.csv``.

    Raises
    ------
    FetchError
        If the folder cannot be created.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from stvlm.datasets import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     get_data_home(pathlib.Path(tmp) / "cache").name
    'cache'
    """
    path = _cache_path(data_home)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(
            f"cannot create the stvlm download folder {str(path)!r} ({exc}); pass data_home= or set "
            f"${CACHE_ENV_VAR} to a writable folder."
        ) from exc
    return path.resolve()


def _cache_path(data_home=None) -> pathlib.Path:
    if data_home is None:
        data_home = os.environ.get(CACHE_ENV_VAR) or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "stvlm"
        )
    return pathlib.Path(os.fspath(data_home)).expanduser()


@dataclass(frozen=True)
class RemoteFile:
    """A public file: where it is hosted, where it goes, and how to know it is the right one.

    ``checksum`` is ``("sha256", hex)`` or ``("git-sha1", hex)``: the git blob id of the
    file in its hosting repository (``sha1(b"blob <size>\\0" + content)``), where that
    repository, not a release page, is what publishes the file.
    """

    url: str
    relpath: str  # inside a data folder or the cache, e.g. "pems08/PEMS08.npz"
    checksum: tuple
    description: str = ""
    alternatives: tuple = ()  # other relative paths a data folder may hold it under


def file_digest(path, kind) -> str:
    """sha256 or git blob sha1 of a file, read in chunks."""
    path = pathlib.Path(path)
    if kind == "sha256":
        h = hashlib.sha256()
    elif kind == "git-sha1":
        h = hashlib.sha1(usedforsecurity=False)
        h.update(b"blob %d\0" % path.stat().st_size)
    else:  # pragma: no cover - registry entries are fixed
        raise ValueError(f"unknown checksum kind {kind!r}")
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _manual(remote, cache):
    kind, value = remote.checksum
    check = f"sha256 {value}" if kind == "sha256" else f"git blob id {value}, as `git hash-object <file>` prints it"
    return (
        f"Download {remote.url} yourself ({remote.description or remote.relpath}; {check}) and put it at "
        f"{str(cache / remote.relpath)!r} "
        f"(or <data folder>/{remote.relpath}, the data folder being data_dir / $STVLM_DATA_DIR)."
    )


def _verify(remote, path, check, cache, origin):
    digest = file_digest(path, remote.checksum[0])
    if digest != remote.checksum[1]:
        raise FetchError(
            f"{origin} {str(path)!r} is not the expected file: its {remote.checksum[0]} is {digest}, "
            f"expected {remote.checksum[1]}. " + _manual(remote, cache)
        )
    if check is not None:
        try:
            check(path)
        except ValueError as exc:
            raise FetchError(f"{origin} {str(path)!r} has the right checksum but {exc}") from exc


def _download(remote, dest, check, cache, timeout, verbose):
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        try:
            response = urllib.request.urlopen(remote.url, timeout=timeout)
        except urllib.error.HTTPError as exc:
            raise FetchError(
                f"could not download {remote.url}: the server answered {exc.code} {exc.reason}. "
                + _manual(remote, cache)
            ) from exc
        except (urllib.error.URLError, socket.timeout, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError(
                f"could not download {remote.url}: no connection ({reason}). " + _manual(remote, cache)
            ) from exc
        with response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            from .._progress import progress

            bar = progress(total, verbose, f"download {dest.name}")
            if verbose:
                bar.unit, bar.unit_scale = "B", True
            got = 0
            try:
                with open(part, "wb") as out:
                    while True:
                        try:
                            block = response.read(_CHUNK)
                        except (OSError, ValueError) as exc:  # connection reset, timeout mid-body
                            raise FetchError(
                                f"the download of {remote.url} broke off after {got:,} bytes ({exc}). "
                                + _manual(remote, cache)
                            ) from exc
                        if not block:
                            break
                        out.write(block)
                        got += len(block)
                        bar.update(len(block))
            finally:
                bar.close()
        if total is not None and got != total:
            raise FetchError(
                f"the download of {remote.url} is truncated: {got:,} of {total:,} bytes. " + _manual(remote, cache)
            )
        _verify(remote, part, check, cache, f"the download of {remote.url}, saved as")
        os.replace(part, dest)  # atomic: the destination is either absent or whole and checked
    finally:
        if part.exists():
            part.unlink()
    return dest


def resolve(remote, *, data_dir=None, data_home=None, download_if_missing=True, check=None, timeout=60.0, verbose=1):
    """Path of a verified local copy of ``remote``, downloading it into the cache if needed.

    ``data_dir`` (or ``$STVLM_DATA_DIR`` / a ``shared/data`` folder when it is None) is
    looked at first, then the cache ``get_data_home(data_home)``. A copy that is found
    but fails its checks raises :class:`FetchError` and is left as it is (a copy the
    user put there is never deleted).
    """
    from ._files import data_home as find_data_folder

    cache = _cache_path(data_home)  # created only to download into
    folders = []
    if data_dir is not None:
        folders.append(find_data_folder(data_dir))
    else:
        try:
            folders.append(find_data_folder())
        except FileNotFoundError:
            pass
    folders.append(cache)
    for folder in folders:
        for rel in (remote.relpath, *remote.alternatives):
            path = folder / rel
            if path.is_file():
                _verify(remote, path, check, cache, "the local copy")
                return path
    if not download_if_missing:
        looked = ", ".join(str(f / remote.relpath) for f in folders)
        raise FileNotFoundError(
            f"{remote.description or remote.relpath} not found (looked at {looked}); fetch it with "
            f"download_if_missing=True / download=True, or `stvlm fetch`. " + _manual(remote, cache)
        )
    timeout = float(timeout)
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}.")
    cache = get_data_home(data_home)
    return _download(remote, cache / remote.relpath, check, cache, timeout, verbose)
