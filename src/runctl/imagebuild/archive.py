"""The source archive: a gzipped tar that is the same bytes for the same tree.

Determinism is what makes "never twice" and the dirty tag work: the archive's sha256 names a
dirty build, and re-uploading identical content must be a no-op. So entries are sorted, every
mtime is 0, owners are uid/gid 0 with empty names, modes are 0644 or 0755 (0755 for directories
and executables, 0777 for symlinks, as `ls` shows them), and the gzip header carries neither a
timestamp nor a file name. Directories appear as entries for the parents of the files only:
git cannot hold empty directories, so a commit's tree and its clean checkout give one archive.
"""

from __future__ import annotations

import gzip
import hashlib
import posixpath
import tarfile
import tempfile
from dataclasses import dataclass
from typing import IO, BinaryIO

from runctl.errors import UsageError
from runctl.imagebuild.source import Listing, SourceFile

SPOOL_BYTES = 32 * 1024 * 1024  # archives smaller than this never touch the disk
COMPRESS_LEVEL = 6


class _TooLarge(Exception):
    pass


class _CountingSink:
    """A write-only file that hashes and counts what gzip writes, and enforces the limit."""

    def __init__(self, out: IO[bytes], limit: int) -> None:
        self.out = out
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise _TooLarge
        self.digest.update(data)
        self.out.write(data)
        return len(data)

    def flush(self) -> None:
        self.out.flush()


@dataclass
class Archive:
    file: IO[bytes]  # positioned anywhere; use `rewind()` before reading
    size: int
    sha256: str
    entries: int

    def rewind(self) -> IO[bytes]:
        self.file.seek(0)
        return self.file

    def read_bytes(self) -> bytes:
        return self.rewind().read()

    def close(self) -> None:
        self.file.close()


def _info(name: str, kind: str, mode: int, size: int = 0, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE}[kind]
    info.mode = mode
    info.size = size
    info.linkname = target
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _directories(files: tuple[SourceFile, ...]) -> set[str]:
    dirs: set[str] = set()
    for f in files:
        parent = posixpath.dirname(f.path)
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    return dirs


def _add_file(tar: tarfile.TarFile, source: SourceFile, stream: BinaryIO) -> None:
    mode = 0o755 if source.executable else 0o644
    changed = UsageError(
        f"{source.path} changed while it was being archived", hint="run the build again"
    )
    try:
        tar.addfile(_info(source.path, "file", mode, source.size), stream)
    except OSError as err:
        if "unexpected end of data" in str(err):
            raise changed from None
        raise
    if stream.read(1):  # it grew after it was listed: the archive would not match the listing
        raise changed


def write_archive(listing: Listing, *, limit_bytes: int) -> Archive:
    """Archive `listing`; a usage error naming the largest entries if it exceeds the limit."""
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    sink = _CountingSink(out, limit_bytes)
    entries = sorted(
        [(d, None) for d in _directories(listing.files)] + [(f.path, f) for f in listing.files],
        key=lambda pair: pair[0],
    )
    try:
        # filename="" and mtime=0: no name and no timestamp in the gzip header.
        with (
            gzip.GzipFile(
                filename="", mode="wb", fileobj=sink, mtime=0, compresslevel=COMPRESS_LEVEL
            ) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
            listing.opener() as open_source,
        ):
            for name, source in entries:
                if source is None:
                    tar.addfile(_info(name, "dir", 0o755))
                elif source.kind == "symlink":
                    tar.addfile(_info(name, "symlink", 0o777, target=source.target))
                else:
                    with open_source(source) as stream:
                        _add_file(tar, source, stream)
    except _TooLarge:
        out.close()
        raise UsageError(_too_large(listing, limit_bytes), hint=_too_large_hint(listing)) from None
    except BaseException:
        out.close()
        raise
    return Archive(out, sink.size, sink.digest.hexdigest(), len(entries))


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _too_large(listing: Listing, limit: int) -> str:
    largest = "\n".join(f"  {human_bytes(size):>10}  {path}" for path, size in listing.largest())
    return (
        f"the source archive of {listing.description} is over the {human_bytes(limit)} limit "
        f"([build] max_archive_mb); {len(listing.files)} files, "
        f"{human_bytes(listing.total_size())} before compression. Largest entries:\n{largest}"
    )


def _too_large_hint(listing: Listing) -> str:
    where = ".gcloudignore" if listing.rules is not None else ".gcloudignore (or .gitignore)"
    return f"exclude what the image does not need in {where}, or raise [build] max_archive_mb"
