"""Uploading the source archive to `gs://<project>_cloudbuild/source/`, as gcloud does.

The object name carries the archive's sha256, so an object that already has the name already has
the content: the upload is conditional on the object not existing (`ifGenerationMatch=0`) and a
412 means there is nothing to do. The bucket is created on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runctl.apierrors import translate
from runctl.errors import AccessDenied
from runctl.gcp import Clients
from runctl.imagebuild.archive import Archive

CONTENT_TYPE = "application/gzip"


def source_bucket(project: str) -> str:
    """gcloud's default source bucket: domain-scoped ids and `google` are not allowed in names."""
    safe = project.replace(":", "_").replace(".", "_").replace("google", "elgoog")
    return f"{safe}_cloudbuild"


def object_name(tag: str, archive_sha256: str) -> str:
    return f"source/{tag}-{archive_sha256[:12]}.tgz"


@dataclass(frozen=True)
class Uploaded:
    bucket: str
    name: str
    generation: int  # 0 when the object was already there (the latest generation is used)
    existed: bool

    @property
    def url(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def upload(clients: Clients, archive: Archive, *, name: str, location: str) -> Uploaded:
    from google.api_core import exceptions

    client = clients.storage()
    bucket = source_bucket(clients.project)
    try:
        try:
            return _put(client, bucket, name, archive)
        except exceptions.NotFound:
            _create_bucket(client, bucket, location)
            return _put(client, bucket, name, archive)
    except exceptions.Forbidden as err:
        raise AccessDenied(
            f"uploading the source to gs://{bucket}: permission denied: {err.message}",
            hint="the caller needs storage.objects.create on the bucket (roles/storage.admin or "
            "roles/cloudbuild.builds.editor); if another project owns a bucket of that name, "
            "ask for access",
        ) from err
    except exceptions.GoogleAPICallError as err:
        where = f"gs://{bucket}/{name}"
        raise translate(err, action="uploading the source", resource=where) from err


def _put(client: Any, bucket: str, name: str, archive: Archive) -> Uploaded:
    from google.api_core import exceptions

    blob = client.bucket(bucket).blob(name)
    try:
        blob.upload_from_file(
            archive.rewind(),
            size=archive.size,
            content_type=CONTENT_TYPE,
            if_generation_match=0,
        )
    except exceptions.PreconditionFailed:
        return Uploaded(bucket, name, 0, existed=True)
    return Uploaded(bucket, name, int(blob.generation or 0), existed=False)


def _create_bucket(client: Any, bucket: str, location: str) -> None:
    from google.api_core import exceptions

    try:
        client.create_bucket(bucket, location=location)
    except exceptions.Conflict:
        pass  # created meanwhile (or owned elsewhere: the upload will say so)
    except exceptions.GoogleAPICallError as err:
        where = f"gs://{bucket}"
        raise translate(err, action="creating the source bucket", resource=where) from err
