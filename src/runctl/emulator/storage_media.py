"""Cloud Storage media: uploads (media, multipart, resumable) and ranged downloads.

The resumable protocol is the one google-cloud-storage speaks: a POST returns the session URI in
`Location`; each PUT carries `Content-Range: bytes S-E/TOTAL` (or `/*` while the size is
unknown) and is answered 308 "Resume Incomplete" with `Range: bytes=0-N` until the last byte
arrives, then 200 with the object resource.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from runctl.emulator.http import HttpError, HttpRequest, HttpResponse
from runctl.emulator.jsonapi import JsonCall, error_response
from runctl.emulator.storage_model import (
    ObjectRecord,
    check_preconditions,
    crc32c_of,
    md5_of,
    object_name_problem,
)

if TYPE_CHECKING:
    from runctl.emulator.storage import Storage

DEFAULT_CONTENT_TYPE = "application/octet-stream"
PRECONDITION_ARGS = (
    "ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch",
    "ifMetagenerationNotMatch",
)  # fmt: skip
CONTENT_RANGE_RE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class UploadSession:
    upload_id: str
    bucket: str
    name: str
    content_type: str
    metadata: dict[str, Any]  # the object resource fields sent when the session started
    preconditions: dict[str, list[str]]
    total: int | None = None
    data: bytearray = field(default_factory=bytearray)
    result: dict[str, Any] | None = None  # the object resource once the upload completed
    created: float = field(default_factory=time.time)


# -- committing an upload ----------------------------------------------------------------------


def _commit(
    storage: Storage,
    request: HttpRequest,
    *,
    bucket: str,
    name: str,
    data: bytes,
    content_type: str,
    metadata: dict[str, Any],
    preconditions: dict[str, list[str]],
) -> ObjectRecord:
    problem = object_name_problem(name)
    if problem:
        raise HttpError(400, problem, reason="invalid" if name else "required")
    check_preconditions(preconditions, storage.objects[bucket].get(name), read=False)
    _check_checksums(metadata, data)
    return storage.put_object(
        bucket, name, data, str(metadata.get("contentType") or content_type), metadata
    )


def _check_checksums(metadata: dict[str, Any], data: bytes) -> None:
    """The client sends the checksum it computed; GCS refuses data that does not match it."""
    sent_crc = metadata.get("crc32c")
    if sent_crc and sent_crc != crc32c_of(data):
        raise HttpError(
            400,
            f'Provided CRC32C "{sent_crc}" doesn\'t match calculated CRC32C "{crc32c_of(data)}".',
        )
    sent_md5 = metadata.get("md5Hash")
    if sent_md5 and sent_md5 != md5_of(data):
        raise HttpError(400, f'Provided MD5 hash "{sent_md5}" doesn\'t match calculated MD5 hash.')


def upload_name(request: HttpRequest) -> str:
    """The object an upload request names (for the call log), without failing on bad input."""
    if request.arg("name"):
        return request.arg("name") or ""
    try:
        if request.arg("uploadType") == "multipart":
            metadata = parse_multipart(request)[0]
        else:
            metadata = json.loads(request.body or b"{}")
        return str(metadata.get("name") or "")
    except (HttpError, ValueError, AttributeError):
        return ""


def _preconditions(request: HttpRequest) -> dict[str, list[str]]:
    return {k: v for k, v in request.query.items() if k in PRECONDITION_ARGS}


def _media_type(request: HttpRequest) -> str:
    return request.headers.get("content-type") or DEFAULT_CONTENT_TYPE


def _x_goog_hash(value: str) -> dict[str, str]:
    """`crc32c=...,md5=...` (one header or several joined by commas) as a dict."""
    out = {}
    for part in value.split(","):
        key, _, digest = part.strip().partition("=")
        if digest:
            out[key] = digest
    return out


# -- POST /upload/storage/v1/b/{bucket}/o --------------------------------------------------------


def upload(storage: Storage, request: HttpRequest, call: JsonCall) -> HttpResponse:
    bucket = storage.bucket_of(request)
    kind = request.arg("uploadType") or ""
    if kind == "media":
        record = _commit(
            storage,
            request,
            bucket=bucket.name,
            name=request.arg("name") or "",
            data=request.body,
            content_type=_media_type(request),
            metadata={},
            preconditions=_preconditions(request),
        )
        return HttpResponse.json(storage.object_json(request, record))
    if kind == "multipart":
        metadata, media_type, data = parse_multipart(request)
        record = _commit(
            storage,
            request,
            bucket=bucket.name,
            name=str(metadata.get("name") or request.arg("name") or ""),
            data=data,
            content_type=media_type,
            metadata=metadata,
            preconditions=_preconditions(request),
        )
        return HttpResponse.json(storage.object_json(request, record))
    if kind == "resumable":
        return _start_session(storage, request, bucket.name)
    raise HttpError(400, f"Invalid upload type: {kind!r}", reason="invalid")


def parse_multipart(request: HttpRequest) -> tuple[dict[str, Any], str, bytes]:
    """(object metadata, media content type, media bytes) of a multipart/related body."""
    match = re.search(r'boundary="?([^";]+)"?', request.headers.get("content-type", ""))
    if not match:
        raise HttpError(400, "Multipart upload without a boundary.")
    delimiter = b"--" + match.group(1).encode()
    sections = request.body.split(delimiter)
    # [preamble, metadata part, media part, "--" + epilogue]
    if len(sections) != 4 or not sections[3].startswith(b"--"):
        raise HttpError(400, "Multipart upload must have exactly two parts: metadata and media.")
    parts = []
    for section in sections[1:3]:
        section = section.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, sep, body = section.partition(b"\r\n\r\n")
        if not sep:
            raise HttpError(400, "Malformed multipart section.")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        parts.append((headers, body))
    try:
        metadata = json.loads(parts[0][1] or b"{}")
    except ValueError as err:
        raise HttpError(400, f"Metadata part is not JSON: {err}") from None
    if not isinstance(metadata, dict):
        raise HttpError(400, "Metadata part must be a JSON object.")
    media_headers, data = parts[1]
    return metadata, media_headers.get("content-type") or DEFAULT_CONTENT_TYPE, data


def _start_session(storage: Storage, request: HttpRequest, bucket: str) -> HttpResponse:
    metadata = request.json() or {}
    if not isinstance(metadata, dict):
        raise HttpError(400, "Resumable upload metadata must be a JSON object.")
    name = str(metadata.get("name") or request.arg("name") or "")
    problem = object_name_problem(name)
    if problem:
        raise HttpError(400, problem, reason="invalid" if name else "required")
    preconditions = _preconditions(request)
    # Checked when the session starts (fail fast) and again when the object is committed.
    check_preconditions(preconditions, storage.objects[bucket].get(name), read=False)
    total_header = request.headers.get("x-upload-content-length")
    session = UploadSession(
        upload_id=uuid.uuid4().hex,
        bucket=bucket,
        name=name,
        content_type=request.headers.get("x-upload-content-type") or DEFAULT_CONTENT_TYPE,
        metadata=metadata,
        preconditions=preconditions,
        total=int(total_header) if total_header and total_header.isdigit() else None,
    )
    storage.uploads[session.upload_id] = session
    base = storage.base_url(request, storage.emulator.http_base)
    location = (
        f"{base}/upload/storage/v1/b/{bucket}/o?uploadType=resumable"
        f"&name={quote(name, safe='')}&upload_id={session.upload_id}"
    )
    return HttpResponse(200, b"", {"Location": location, "X-GUploader-UploadID": session.upload_id})


# -- PUT / DELETE on a session URI ---------------------------------------------------------------


def resumable(storage: Storage, request: HttpRequest, call: JsonCall) -> HttpResponse:
    upload_id = request.arg("upload_id") or ""
    session = storage.uploads.get(upload_id)
    if session is None or session.bucket != storage.bucket_of(request).name:
        raise HttpError(404, f"No upload session {upload_id!r}.", reason="notFound")
    if request.method == "DELETE":
        del storage.uploads[upload_id]
        return HttpResponse(499)  # what GCS answers a cancelled session
    if session.result is not None:
        return HttpResponse.json(session.result)
    _receive(session, request)
    if session.total is None or len(session.data) < session.total:
        headers = {"Range": f"bytes=0-{len(session.data) - 1}"} if session.data else {}
        return HttpResponse(308, b"", headers)
    data = bytes(session.data)
    sent = _x_goog_hash(request.headers.get("x-goog-hash", ""))
    _check_checksums({"crc32c": sent.get("crc32c"), "md5Hash": sent.get("md5")}, data)
    record = _commit(
        storage,
        request,
        bucket=session.bucket,
        name=session.name,
        data=data,
        content_type=session.content_type,
        metadata=session.metadata,
        preconditions=session.preconditions,
    )
    session.result = storage.object_json(request, record)
    return HttpResponse.json(session.result)


def _receive(session: UploadSession, request: HttpRequest) -> None:
    """Append the chunk a PUT carries (overlaps are dropped, a gap leaves the data unchanged)."""
    header = request.headers.get("content-range")
    total: int | None
    if header is None:  # the whole object in one request
        start, total = 0, len(request.body)
    else:
        match = CONTENT_RANGE_RE.match(header.strip())
        if not match:
            raise HttpError(400, f"Invalid Content-Range: {header!r}")
        first, last, size = match.groups()
        total = int(size) if size != "*" else session.total
        if first is None:  # "bytes */N": a status query, or the end of an exact-size upload
            start = len(session.data)
            if request.body:
                raise HttpError(400, "A Content-Range of '*' cannot carry data.")
        else:
            start = int(first)
            if int(last) - start + 1 != len(request.body):
                raise HttpError(400, "Content-Range does not match the request body's length.")
    if total is not None:
        session.total = total
    received = len(session.data)
    if start <= received:
        session.data += request.body[received - start :]
    if session.total is not None and len(session.data) > session.total:
        raise HttpError(400, "More data than the declared size of the upload.")


# -- downloads ---------------------------------------------------------------------------------


def download(request: HttpRequest, record: ObjectRecord) -> HttpResponse:
    """The object's bytes, or the part `Range: bytes=a-b` asks for (206; 416 past the end)."""
    headers = {
        "Content-Type": record.content_type,
        "Accept-Ranges": "bytes",
        "ETag": record.etag,
        "x-goog-generation": str(record.generation),
        "x-goog-metageneration": str(record.metageneration),
        "x-goog-stored-content-length": str(record.size),
        "x-goog-stored-content-encoding": record.custom.get("contentEncoding", "identity"),
        "x-goog-hash": f"crc32c={record.crc32c},md5={record.md5}",
    }
    try:
        wanted = _parse_range(request.headers.get("range"), record.size)
    except _Unsatisfiable:
        return error_response(
            416,
            "The requested range cannot be satisfied.",
            headers={"Content-Range": f"bytes */{record.size}"},
        )
    if wanted is None:
        return HttpResponse(200, record.data, headers)
    first, last = wanted
    headers["Content-Range"] = f"bytes {first}-{last}/{record.size}"
    return HttpResponse(206, record.data[first : last + 1], headers)


class _Unsatisfiable(Exception):
    pass


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive, or None to send the whole object; raises _Unsatisfiable.

    A header that is not one simple byte range is ignored, as HTTP allows.
    """
    if not header:
        return None
    match = RANGE_RE.match(header.strip().replace(" ", ""))
    if not match or match.group(1) == match.group(2) == "":
        return None
    first_text, last_text = match.groups()
    if first_text == "":  # "bytes=-N": the last N bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # syntactically invalid: ignored
    if first >= size:
        raise _Unsatisfiable
    return first, min(last, size - 1)
