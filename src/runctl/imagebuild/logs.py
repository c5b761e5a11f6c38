"""Following a Cloud Build log object as it grows, as `gcloud builds submit` does.

Cloud Build rewrites `<logs_bucket>/log-<BUILD_ID>.txt` as the build runs (each rewrite a new
generation, the text only ever appended to). We ask for the bytes from the offset we reached:
404 means no log yet, 416 nothing new. Each read uses a fresh Blob, since a Blob that has
downloaded remembers that generation. Lines are handed out once, whole, in order; a last line
without a newline is released only by `finish()`.
"""

from __future__ import annotations

from collections import deque
from typing import Any

KEPT_LINES = 200  # enough for the tail shown when a build fails
# Cloud Build's default logs bucket, `NUMBER.cloudbuild-logs.googleusercontent.com`, is Google's:
# only the project's basic roles (Viewer, Editor, Owner) may read it, never a predefined role.
DEFAULT_LOGS_SUFFIX = ".cloudbuild-logs.googleusercontent.com"


def log_object(logs_bucket: str, build_id: str) -> tuple[str, str]:
    """(bucket, object) of a build's log: `${logs_bucket}/log-${build_id}.txt`."""
    bucket, _, directory = logs_bucket.removeprefix("gs://").partition("/")
    directory = directory.strip("/")
    name = f"log-{build_id}.txt"
    return bucket, f"{directory}/{name}" if directory else name


class LogUnreadable(Exception):
    """The caller may not read the logs bucket (a 403): only the status can be followed."""


def unreadable_fix(bucket: str) -> str:
    """How to let the caller stream the log next time, for a log it may not read in `bucket`."""
    if bucket.endswith(DEFAULT_LOGS_SUFFIX):
        return (
            "Cloud Build's default logs bucket is readable only by project viewers; to stream "
            'the log, set [build] logs_bucket = "gs://BUCKET" in the project file (`runctl '
            "bootstrap` creates it and lets the deployer read it), or grant the caller "
            "roles/viewer on the project"
        )
    return (
        f"to stream the log, let the caller read gs://{bucket} (`runctl bootstrap` grants the "
        "deployer roles/storage.objectViewer on the configured [build] logs_bucket)"
    )


class LogTail:
    def __init__(self, storage: Any, logs_bucket: str, build_id: str) -> None:
        self.storage = storage
        self.bucket, self.name = log_object(logs_bucket, build_id)
        self.offset = 0
        self._partial = b""
        self.lines: deque[str] = deque(maxlen=KEPT_LINES)  # the latest lines handed out

    @property
    def url(self) -> str:
        return f"gs://{self.bucket}/{self.name}"

    def _read(self) -> bytes:
        from google.api_core import exceptions

        blob = self.storage.bucket(self.bucket).blob(self.name)
        try:
            # No checksum: a ranged read cannot be checked against the whole object's hash.
            data: bytes = blob.download_as_bytes(start=self.offset, checksum=None)
        except (exceptions.NotFound, exceptions.RequestRangeNotSatisfiable):
            return b""
        except exceptions.Forbidden as err:
            raise LogUnreadable(str(err.message)) from err
        return data

    def poll(self) -> list[str]:
        """The complete lines written since the last poll."""
        data = self._read()
        if not data:
            return []
        self.offset += len(data)
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()
        return self._hand_out(chunks)

    def finish(self) -> list[str]:
        """After the build ended: what is left, including a last line without a newline."""
        lines = self.poll()
        if self._partial:
            lines += self._hand_out([self._partial])
            self._partial = b""
        return lines

    def _hand_out(self, chunks: list[bytes]) -> list[str]:
        lines = [c.decode("utf-8", errors="replace").rstrip("\r") for c in chunks]
        self.lines.extend(lines)
        return lines

    def tail(self, count: int = 20) -> list[str]:
        return list(self.lines)[-count:]
