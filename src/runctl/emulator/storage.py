"""Cloud Storage: the JSON API subset that google-cloud-storage uses, on the emulator's HTTP side.

google-cloud-storage reaches it through `STORAGE_EMULATOR_HOST`. Buckets (insert, get, list,
delete) and objects (media, multipart and resumable uploads, metadata, ranged media downloads,
listing with prefix/delimiter, delete) behave as on GCS: generations, md5Hash/crc32c, the
`ifGenerationMatch` family of preconditions (412), 404/409 and Google's JSON error format. Every
request goes through the same call log, latency, faults, API enablement and IAM checks as gRPC
calls (see `jsonapi.py`); a bucket's IAM parent is the project that owns it, except for buckets
Google keeps for a project (Cloud Build's default logs bucket), which only the project's basic
roles may read. Bucket IAM (`/b/B/iam`, `.../testPermissions`) is in `storage_iam.py`.

Other modules use the plain Python interface: `create_bucket`, `bucket_exists`, `read_object`,
`write_object` (Cloud Build reads its source archive and writes its logs through it).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runctl.emulator import storage_iam, storage_media
from runctl.emulator.http import HttpError, HttpRequest, HttpResponse
from runctl.emulator.jsonapi import JsonCall, JsonHandler, Target, json_api
from runctl.emulator.module import Module
from runctl.emulator.rpc import already_exists, invalid, not_found
from runctl.emulator.storage_model import (
    CUSTOM_OBJECT_FIELDS,
    BucketRecord,
    ObjectRecord,
    bucket_name_problem,
    check_preconditions,
)

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

API_NAME = "storage.googleapis.com"
BUCKETS = r"/storage/v1/b"
BUCKET = r"/storage/v1/b/(?P<bucket>[^/]+)"
OBJECTS = BUCKET + r"/o"
OBJECT = BUCKET + r"/o/(?P<object>.+)"
UPLOADS = r"/upload/storage/v1/b/(?P<bucket>[^/]+)/o"
DOWNLOAD = r"/download/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+)"
BUCKET_RESOURCE_PREFIX = "projects/_/buckets/"
DEFAULT_PAGE = 1000
NO_BUCKET = "The specified bucket does not exist."
BUCKET_NOUN = "Google Cloud Storage bucket"
BUCKET_IAM = BUCKET + r"/iam"
BUCKET_IAM_TEST = BUCKET + r"/iam/testPermissions"
OBJECT_NOUN = "Google Cloud Storage object"


def no_object(bucket: str, name: str) -> HttpError:
    return HttpError(404, f"No such object: {bucket}/{name}", reason="notFound")


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode_token(token: str | None) -> str:
    if not token:
        return ""
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except ValueError:
        raise HttpError(400, f"Invalid pageToken: {token!r}", reason="invalid") from None


def _page_size(request: HttpRequest) -> int:
    raw = request.arg("maxResults")
    try:
        size = int(raw) if raw else DEFAULT_PAGE
    except ValueError:
        raise HttpError(400, f"Invalid maxResults: {raw!r}", reason="invalid") from None
    return max(1, min(size, DEFAULT_PAGE))


class Storage(Module):
    name = "storage"

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.buckets: dict[str, BucketRecord] = {}
        self.objects: dict[str, dict[str, ObjectRecord]] = {}
        self.uploads: dict[str, storage_media.UploadSession] = {}
        self._last_generation = 0
        emulator.iam.parent_hooks.append(self._iam_parents)
        self._register_routes()

    # -- the Python interface other modules use ------------------------------------------------

    def create_bucket(self, project: str, name: str) -> None:
        """Create `name` owned by `project`; a no-op if that project already owns it."""
        problem = bucket_name_problem(name, google_owned=True)
        if problem:
            raise invalid(f"Invalid bucket name: '{name}': {problem}.", "name")
        owner = self.emulator.projects.get(project).project_id
        existing = self.buckets.get(name)
        if existing is not None:
            if existing.project == owner:
                return
            raise already_exists(f"Bucket {name} already exists.")
        # A name no customer may take is Google's bucket, kept for the project.
        managed = bucket_name_problem(name) is not None
        self.buckets[name] = BucketRecord(name=name, project=owner, managed=managed)
        self.objects[name] = {}
        if managed:
            policy = storage_iam.managed_bucket_policy(owner)
            self.emulator.iam.set_policy(storage_iam.bucket_resource(name), policy)
        self.emulator.state_changed()

    def bucket_exists(self, name: str) -> bool:
        return name in self.buckets

    def bucket_project(self, name: str) -> str | None:
        """The id of the project that owns bucket `name`, or None if it does not exist."""
        bucket = self.buckets.get(name)
        return bucket.project if bucket else None

    def get_object(self, bucket: str, name: str) -> ObjectRecord:
        if bucket not in self.buckets:
            raise not_found(NO_BUCKET)
        record = self.objects[bucket].get(name)
        if record is None:
            raise not_found(f"No such object: {bucket}/{name}")
        return record

    def read_object(self, bucket: str, name: str) -> bytes:
        return self.get_object(bucket, name).data

    def write_object(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str = "application/octet-stream",
    ) -> None:
        if bucket not in self.buckets:
            raise not_found(NO_BUCKET)
        self.put_object(bucket, name, data, content_type)

    # -- the one write path ------------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        name: str,
        data: bytes,
        content_type: str,
        custom: dict[str, Any] | None = None,
    ) -> ObjectRecord:
        """Store a new generation of `bucket/name` (the bucket must exist)."""
        record = ObjectRecord(
            bucket=bucket,
            name=name,
            data=bytes(data),
            generation=self._next_generation(),
            content_type=content_type or "application/octet-stream",
            custom={k: v for k, v in (custom or {}).items() if k in CUSTOM_OBJECT_FIELDS},
        )
        self.objects[bucket][name] = record
        self.emulator.state_changed()
        return record

    def _next_generation(self) -> int:
        # GCS generations are microsecond timestamps; they only ever grow.
        self._last_generation = max(self._last_generation + 1, time.time_ns() // 1000)
        return self._last_generation

    # -- IAM: a bucket inherits its project's policy -------------------------------------------

    def _iam_parents(self, resource: str) -> list[str]:
        if not resource.startswith(BUCKET_RESOURCE_PREFIX):
            return []
        record = self.buckets.get(resource[len(BUCKET_RESOURCE_PREFIX) :].split("/", 1)[0])
        # Google's buckets live in Google's projects: the customer's policy does not reach them.
        return [f"projects/{record.project}"] if record and not record.managed else []

    def permissions_of(self, principal: str, bucket: str) -> set[str]:
        """What `principal` may do on `bucket` and its objects (convenience values included)."""
        return storage_iam.bucket_permissions(self.emulator, principal, bucket)

    # -- routing ------------------------------------------------------------------------------

    def _register_routes(self) -> None:
        # (HTTP methods, path, API method, mutating, permission, target, handler)
        routes: list[tuple[Any, str, str, bool, str, Callable[..., Target], JsonHandler]] = [
            ("POST", BUCKETS, "storage.buckets.insert", True, "storage.buckets.create",
             self._project_target, self._bucket_insert),
            ("GET", BUCKETS, "storage.buckets.list", False, "storage.buckets.list",
             self._project_target, self._bucket_list),
            ("GET", BUCKET, "storage.buckets.get", False, "storage.buckets.get",
             self._bucket_target, self._bucket_get),
            ("DELETE", BUCKET, "storage.buckets.delete", True, "storage.buckets.delete",
             self._bucket_target, self._bucket_delete),
            ("GET", BUCKET_IAM, "storage.buckets.getIamPolicy", False,
             "storage.buckets.getIamPolicy", self._bucket_target,
             lambda r, c: storage_iam.get_iam_policy(self, r, c)),
            ("PUT", BUCKET_IAM, "storage.buckets.setIamPolicy", True,
             "storage.buckets.setIamPolicy", self._bucket_target,
             lambda r, c: storage_iam.set_iam_policy(self, r, c)),
            # Anyone may ask what they hold; the answer is the subset they do.
            ("GET", BUCKET_IAM_TEST, "storage.buckets.testIamPermissions", False, "",
             self._bucket_target, lambda r, c: storage_iam.iam_permissions(self, r, c)),
            ("GET", OBJECTS, "storage.objects.list", False, "storage.objects.list",
             self._bucket_target, self._object_list),
            ("GET", OBJECT, "storage.objects.get", False, "storage.objects.get",
             self._object_target, self._object_get),
            ("DELETE", OBJECT, "storage.objects.delete", True, "storage.objects.delete",
             self._object_target, self._object_delete),
            ("GET", DOWNLOAD, "storage.objects.get", False, "storage.objects.get",
             self._object_target, self._object_media),
            ("POST", UPLOADS, "storage.objects.insert", True, "storage.objects.create",
             self._upload_target, lambda r, c: storage_media.upload(self, r, c)),
            (("PUT", "DELETE"), UPLOADS, "storage.objects.insert", True, "storage.objects.create",
             self._upload_target, lambda r, c: storage_media.resumable(self, r, c)),
        ]  # fmt: skip
        for methods, pattern, method, mutating, permission, target, handler in routes:
            self._route(methods, pattern, method, mutating, permission, target, handler)

    def _route(
        self,
        methods: str | tuple[str, ...],
        pattern: str,
        method: str,
        mutating: bool,
        permission: str,
        target: Callable[[HttpRequest], Target],
        handler: JsonHandler,
    ) -> None:
        self.emulator.http.add(
            methods,
            pattern,
            json_api(
                self.emulator,
                api=API_NAME,
                method=method,
                mutating=mutating,
                permission=permission or None,
                target=target,
                handler=handler,
            ),
        )

    @staticmethod
    def base_url(request: HttpRequest | None, default: str) -> str:
        host = request.headers.get("host") if request else None
        return f"http://{host}" if host else default

    # -- targets (what a request acts on) -----------------------------------------------------

    def _project_target(self, request: HttpRequest) -> Target:
        project = request.arg("project")
        if not project:
            raise HttpError(400, "Required parameter: project", reason="required")
        return Target(f"projects/{project}", project, noun="project")

    def _holder(self, bucket: str) -> Callable[[str], set[str]]:
        return lambda principal: self.permissions_of(principal, bucket)

    def _bucket_target(self, request: HttpRequest) -> Target:
        assert request.match is not None
        bucket = request.match["bucket"]
        owner = self.bucket_project(bucket)
        resource = BUCKET_RESOURCE_PREFIX + bucket
        return Target(
            resource,
            owner,
            noun=BUCKET_NOUN,
            check_iam=owner is not None,
            permissions=self._holder(bucket),
        )

    def _object_target(self, request: HttpRequest) -> Target:
        assert request.match is not None
        bucket = request.match["bucket"]
        owner = self.bucket_project(bucket)
        resource = f"{BUCKET_RESOURCE_PREFIX}{bucket}/objects/{request.match['object']}"
        return Target(
            resource,
            owner,
            noun=OBJECT_NOUN,
            check_iam=owner is not None,
            iam_resource=BUCKET_RESOURCE_PREFIX + bucket,
            permissions=self._holder(bucket),
        )

    def _upload_target(self, request: HttpRequest) -> Target:
        assert request.match is not None
        bucket = request.match["bucket"]
        session = self.uploads.get(request.arg("upload_id") or "")
        name = session.name if session else storage_media.upload_name(request)
        owner = self.bucket_project(bucket)
        return Target(
            f"{BUCKET_RESOURCE_PREFIX}{bucket}/objects/{name}",
            owner,
            noun=OBJECT_NOUN,
            check_iam=owner is not None,
            iam_resource=BUCKET_RESOURCE_PREFIX + bucket,
            permissions=self._holder(bucket),
        )

    # -- buckets ------------------------------------------------------------------------------

    def _bucket_json(self, request: HttpRequest, bucket: BucketRecord) -> dict[str, Any]:
        number = self.emulator.projects.get(bucket.project).number
        return bucket.resource(self.base_url(request, self.emulator.http_base), number)

    def bucket_of(self, request: HttpRequest) -> BucketRecord:
        assert request.match is not None
        bucket = self.buckets.get(request.match["bucket"])
        if bucket is None:
            raise HttpError(404, NO_BUCKET, reason="notFound")
        return bucket

    def _bucket_insert(self, request: HttpRequest, call: JsonCall) -> HttpResponse:
        body = request.json()
        name = body.get("name") if isinstance(body, dict) else None
        if not name or not isinstance(name, str):
            raise HttpError(400, "Required field: name", reason="required")
        if bucket_name_problem(name):
            raise HttpError(400, f"Invalid bucket name: '{name}'", reason="invalid")
        owner = self.emulator.projects.get(call.target.project or "").project_id
        existing = self.buckets.get(name)
        if existing is not None:
            if existing.project == owner:
                message = (
                    "Your previous request to create the named bucket succeeded and you "
                    "already own it."
                )
            else:
                message = (
                    "The requested bucket name is not available. The bucket namespace is shared "
                    "by all users of the system. Please select a different name and try again."
                )
            raise HttpError(409, message, reason="conflict")
        labels = body.get("labels") or {}
        bucket = BucketRecord(
            name=name,
            project=owner,
            location=str(body.get("location") or "US").upper(),
            storage_class=str(body.get("storageClass") or "STANDARD").upper(),
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        )
        self.buckets[name] = bucket
        self.objects[name] = {}
        return HttpResponse.json(self._bucket_json(request, bucket))

    def _bucket_get(self, request: HttpRequest, call: JsonCall) -> HttpResponse:
        bucket = self.bucket_of(request)
        return HttpResponse.json(self._bucket_json(request, bucket))

    def _bucket_list(self, request: HttpRequest, call: JsonCall) -> HttpResponse:
        owner = self.emulator.projects.get(call.target.project or "").project_id
        prefix = request.arg("prefix") or ""
        after = _decode_token(request.arg("pageToken"))
        size = _page_size(request)
        names = sorted(
            name
            for name, bucket in self.buckets.items()
            if bucket.project == owner
            and not bucket.managed
            and name.startswith(prefix)
            and name > after
        )
        document: dict[str, Any] = {"kind": "storage#buckets"}
        page = names[:size]
        if page:
            document["items"] = [self._bucket_json(request, self.buckets[n]) for n in page]
        if len(names) > size:
            document["nextPageToken"] = _encode_token(page[-1])
        return HttpResponse.json(document)

    def _bucket_delete(self, request: HttpRequest, call: JsonCall) -> HttpResponse:
        bucket = self.bucket_of(request)
        if self.objects[bucket.name]:
            raise HttpError(409, "The bucket you tried to delete is not empty.", reason="conflict")
        del self.buckets[bucket.name]
        del self.objects[bucket.name]
        # A bucket re-created under this name (by anyone) must not inherit the old grants.
        self.emulator.iam.drop(BUCKET_RESOURCE_PREFIX + bucket.name)
        return HttpResponse(204)

    # -- objects ------------------------------------------------------------------------------

    def find_object(self, request: HttpRequest) -> ObjectRecord:
        """The object a request names (honouring `generation`), or 404."""
        bucket = self.bucket_of(request)
        assert request.match is not None
        name = request.match["object"]
        record = self.objects[bucket.name].get(name)
        wanted = request.arg("generation")
        if record is None or (wanted and wanted != str(record.generation)):
            raise no_object(bucket.name, name)
        return record

    def object_json(self, request: HttpRequest | None, record: ObjectRecord) -> dict[str, Any]:
        return record.resource(self.base_url(request, self.emulator.http_base))

    def _object_get(self, request: HttpRequest, call: JsonCall) -> HttpResponse:
        if request.arg("alt") == "media":
            return self._object_media(request, call)
        record = self.find_object(request)
        check_preconditions(request.query, record, read=True)
        return HttpResponse.json(self.object_json(request, record))

    def _object_media(self, request: HttpRequest, call: JsonCall) -> HttpResponse:
        record = self.find_object(request)
        check_preconditions(request.query, record, read=True)
        return storage_media.download(request, record)

    def _object_delete(self, request: HttpRequest, call: JsonCall) -> HttpResponse:
        record = self.find_object(request)
        check_preconditions(request.query, record, read=False)
        del self.objects[record.bucket][record.name]
        return HttpResponse(204)

    def _object_list(self, request: HttpRequest, call: JsonCall) -> HttpResponse:
        bucket = self.bucket_of(request)
        prefix = request.arg("prefix") or ""
        delimiter = request.arg("delimiter") or ""
        start = request.arg("startOffset") or ""
        end = request.arg("endOffset") or ""
        after = _decode_token(request.arg("pageToken"))
        size = _page_size(request)
        # A page that ended on a collapsed prefix resumes after everything under it.
        after_cut = after.find(delimiter, len(prefix)) if delimiter else -1
        collapsed = after_cut >= 0 and after_cut + len(delimiter) == len(after)
        items: list[dict[str, Any]] = []
        prefixes: list[str] = []
        last = ""
        more = False
        for name in sorted(self.objects[bucket.name]):
            if not name.startswith(prefix) or name < start or (end and name >= end):
                continue
            if after and (name <= after or (collapsed and name.startswith(after))):
                continue
            key = name
            if delimiter:
                cut = name.find(delimiter, len(prefix))
                if cut >= 0:
                    key = name[: cut + len(delimiter)]
                    if prefixes and prefixes[-1] == key:
                        continue
            if len(items) + len(prefixes) == size:
                more = True
                break
            if key != name:
                prefixes.append(key)
            else:
                items.append(self.object_json(request, self.objects[bucket.name][name]))
            last = key
        document: dict[str, Any] = {"kind": "storage#objects"}
        if prefixes:
            document["prefixes"] = prefixes
        if items:
            document["items"] = items
        if more:
            document["nextPageToken"] = _encode_token(last)
        return HttpResponse.json(document)

    # -- module lifecycle ---------------------------------------------------------------------

    def reset(self) -> None:
        self.buckets.clear()
        self.objects.clear()
        self.uploads.clear()

    def dump(self) -> dict[str, Any]:
        # Upload sessions in flight are not kept: a client resuming after a restart gets 404
        # for its session and starts over, as it would after GCS expired the session.
        return {
            "buckets": [b.dump() for b in self.buckets.values()],
            "objects": [o.dump() for objs in self.objects.values() for o in objs.values()],
            "last_generation": self._last_generation,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.reset()
        for raw in data.get("buckets", []):
            bucket = BucketRecord.load(raw)
            self.buckets[bucket.name] = bucket
            self.objects[bucket.name] = {}
        for raw in data.get("objects", []):
            record = ObjectRecord.load(raw)
            if record.bucket in self.objects:
                self.objects[record.bucket][record.name] = record
        self._last_generation = int(data.get("last_generation", 0))

    def public_state(self) -> dict[str, Any]:
        return {
            "buckets": {
                name: {
                    "project": bucket.project,
                    "location": bucket.location,
                    "objects": {o.name: o.public() for o in self.objects[name].values()},
                }
                for name, bucket in sorted(self.buckets.items())
            }
        }
