"""Artifact Registry state and naming: repositories, docker packages, images and tags.

Resource names follow the API exactly. A docker image name may contain `/`; inside resource names
that part is URL-encoded (`sub/img` -> `sub%2Fimg`) so every name keeps its fixed segment count:

    projects/P/locations/L/repositories/R
    projects/P/locations/L/repositories/R/dockerImages/IMAGE@sha256:HEX
    projects/P/locations/L/repositories/R/packages/IMAGE
    projects/P/locations/L/repositories/R/packages/IMAGE/tags/TAG
    projects/P/locations/L/repositories/R/packages/IMAGE/versions/sha256:HEX

Image URIs are `LOC-docker.pkg.dev/P/R/IMAGE[:TAG][@sha256:HEX]`.
"""

from __future__ import annotations

import base64
import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from runctl.emulator.rpc import RpcError, invalid

T = TypeVar("T")

# Documented: lowercase letters, digits and hyphens, starting with a letter, ending with a
# letter or digit, at most 63 characters.
REPOSITORY_ID_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Regions (`europe-west1`) and multi-regions (`us`, `europe`, `asia`).
LOCATION_RE = re.compile(r"^[a-z]+(?:-[a-z]+[0-9]+)?$")
# The OCI distribution spec's repository-name grammar and tag grammar.
IMAGE_NAME_RE = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")

_SEG = r"[^/]+"
PARENT_RE = re.compile(rf"^projects/(?P<project>{_SEG})/locations/(?P<location>{_SEG})$")
REPO_RE = re.compile(
    rf"^projects/(?P<project>{_SEG})/locations/(?P<location>{_SEG})"
    rf"/repositories/(?P<repo>{_SEG})(?:/(?P<rest>.+))?$"
)
DOCKER_IMAGE_REST_RE = re.compile(r"^dockerImages/(?P<image>.+)@(?P<digest>sha256:[0-9a-f]+)$")
PACKAGE_REST_RE = re.compile(
    r"^packages/(?P<package>.+?)(?:/(?P<kind>tags|versions)(?:/(?P<leaf>[^/]+))?)?$"
)
IMAGE_URI_RE = re.compile(
    r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[^/]+)/(?P<repo>[^/]+)"
    r"/(?P<image>[^:@]+)(?::(?P<tag>[^:@/]+))?(?:@(?P<digest>[^@]+))?$"
)

DOCKER_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
DEFAULT_IMAGE_SIZE = 52_428_800  # 50 MiB: a typical slim Python service image
MAX_PAGE_SIZE = 1000


def enc(package: str) -> str:
    """A package (image) id as it appears inside a resource name."""
    return quote(package, safe="")


@dataclass
class ImageRecord:
    digest: str
    size_bytes: int
    upload_time: float
    build_time: float
    update_time: float
    seq: int  # push order: breaks ties between timestamps for `update_time desc`
    media_type: str = DOCKER_MEDIA_TYPE

    def dump(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "size_bytes": self.size_bytes,
            "upload_time": self.upload_time,
            "build_time": self.build_time,
            "update_time": self.update_time,
            "seq": self.seq,
            "media_type": self.media_type,
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> ImageRecord:
        return cls(**raw)


@dataclass
class PackageRecord:
    """One docker image name in a repository: its pushed manifests and its tags."""

    name: str  # the image name, unencoded ("hello" or "team/hello")
    create_time: float
    update_time: float
    images: dict[str, ImageRecord] = field(default_factory=dict)  # digest -> image
    tags: dict[str, str] = field(default_factory=dict)  # tag -> digest

    def tags_of(self, digest: str) -> list[str]:
        return sorted(tag for tag, d in self.tags.items() if d == digest)

    def dump(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "create_time": self.create_time,
            "update_time": self.update_time,
            "images": {d: img.dump() for d, img in self.images.items()},
            "tags": dict(self.tags),
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> PackageRecord:
        return cls(
            name=raw["name"],
            create_time=raw["create_time"],
            update_time=raw["update_time"],
            images={d: ImageRecord.load(img) for d, img in raw.get("images", {}).items()},
            tags=dict(raw.get("tags", {})),
        )


@dataclass
class RepoRecord:
    project: str  # project id (never the number)
    location: str
    repository_id: str
    format: str  # Repository.Format name, e.g. "DOCKER"
    mode: str  # Repository.Mode name, e.g. "STANDARD_REPOSITORY"
    create_time: float
    update_time: float
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    immutable_tags: bool = False
    packages: dict[str, PackageRecord] = field(default_factory=dict)  # image name -> package

    @property
    def name(self) -> str:
        return (
            f"projects/{self.project}/locations/{self.location}/repositories/{self.repository_id}"
        )

    @property
    def registry_uri(self) -> str:
        return f"{self.location}-{self.format.lower()}.pkg.dev/{self.project}/{self.repository_id}"

    @property
    def size_bytes(self) -> int:
        return sum(img.size_bytes for pkg in self.packages.values() for img in pkg.images.values())

    def package_name(self, package: str) -> str:
        return f"{self.name}/packages/{enc(package)}"

    def image_name(self, package: str, digest: str) -> str:
        return f"{self.name}/dockerImages/{enc(package)}@{digest}"

    def image_uri(self, package: str, digest: str) -> str:
        return f"{self.registry_uri}/{package}@{digest}"

    def dump(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "location": self.location,
            "repository_id": self.repository_id,
            "format": self.format,
            "mode": self.mode,
            "create_time": self.create_time,
            "update_time": self.update_time,
            "description": self.description,
            "labels": dict(self.labels),
            "immutable_tags": self.immutable_tags,
            "packages": {name: pkg.dump() for name, pkg in self.packages.items()},
        }

    @classmethod
    def load(cls, raw: dict[str, Any]) -> RepoRecord:
        fields = {k: v for k, v in raw.items() if k != "packages"}
        record = cls(**fields)
        record.packages = {n: PackageRecord.load(p) for n, p in raw.get("packages", {}).items()}
        return record


# -- names ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoRef:
    """A parsed name below a repository: `rest` is what follows `repositories/R/`."""

    project: str
    location: str
    repo: str
    rest: str

    @property
    def repo_name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repo}"


def parse_parent(name: str) -> tuple[str, str]:
    match = PARENT_RE.match(name)
    if not match:
        raise invalid(f"Invalid parent {name!r}: expected projects/*/locations/*.", "parent")
    return match["project"], match["location"]


def parse_repo_ref(name: str, field_name: str = "name") -> RepoRef:
    match = REPO_RE.match(name)
    if not match:
        raise invalid(
            f"Invalid resource name {name!r}: expected "
            "projects/*/locations/*/repositories/*[/...].",
            field_name,
        )
    return RepoRef(match["project"], match["location"], match["repo"], match["rest"] or "")


def parse_docker_image_rest(rest: str, name: str) -> tuple[str, str]:
    """(image name, digest) from `dockerImages/IMAGE@sha256:HEX`."""
    match = DOCKER_IMAGE_REST_RE.match(rest)
    if not match or not DIGEST_RE.match(match["digest"]):
        raise invalid(
            f"Invalid docker image name {name!r}: expected "
            ".../dockerImages/IMAGE@sha256:<64 hex digits>.",
            "name",
        )
    return unquote(match["image"]), match["digest"]


def parse_package_rest(rest: str, name: str, kind: str | None) -> tuple[str, str]:
    """(image name, leaf) from `packages/IMAGE[/tags|versions[/LEAF]]`.

    `kind` is the collection expected after the package (None: the package itself); the leaf is
    "" when the name ends at the collection (a list parent) or at the package.
    """
    match = PACKAGE_REST_RE.match(rest)
    if not match or match["kind"] != kind:
        want = f"/{kind}/*" if kind else ""
        raise invalid(f"Invalid resource name {name!r}: expected .../packages/*{want}.", "name")
    return unquote(match["package"]), unquote(match["leaf"] or "")


def iam_resource_name(name: str) -> str:
    """The request name re-encoded so IAM's segment-pair walk reaches the repository.

    A client may send an image name with raw `/` in it; that would break the even segment count
    the permission check relies on. A name that does not parse gives "" (no check: the method
    then reports INVALID_ARGUMENT itself).
    """
    match = REPO_RE.match(name)
    if not match:
        return name if PARENT_RE.match(name) else ""
    rest = match["rest"] or ""
    base = name[: len(name) - len(rest)].rstrip("/")
    if not rest:
        return base
    image = DOCKER_IMAGE_REST_RE.match(rest)
    if image:
        return f"{base}/dockerImages/{enc(unquote(image['image']))}@{image['digest']}"
    package = PACKAGE_REST_RE.match(rest)
    if package:
        tail = f"/{package['kind']}" if package["kind"] else ""
        tail += f"/{package['leaf']}" if package["leaf"] else ""
        return f"{base}/packages/{enc(unquote(package['package']))}{tail}"
    return base


@dataclass(frozen=True)
class ImageUri:
    location: str
    project: str
    repo: str
    image: str
    tag: str | None
    digest: str | None

    @property
    def repo_name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repo}"


def parse_image_uri(uri: str) -> ImageUri | None:
    """An Artifact Registry docker URI, or None for anything else (docker.io, gcr.io, ...)."""
    match = IMAGE_URI_RE.match(uri)
    if not match:
        return None
    return ImageUri(
        location=match["location"],
        project=match["project"],
        repo=match["repo"],
        image=match["image"],
        tag=match["tag"],
        digest=match["digest"],
    )


# -- validation -------------------------------------------------------------------------------


def check_image_name(image: str) -> None:
    if not IMAGE_NAME_RE.match(image) or len(image) > 255:
        raise invalid(
            f"Invalid image name {image!r}: lowercase letters, digits and separators "
            "(., _, __, -) in components joined by '/'.",
            "image",
        )


def check_tag(tag: str) -> None:
    if not TAG_RE.match(tag):
        raise invalid(
            f"Invalid tag {tag!r}: up to 128 letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'.",
            "tag",
        )


def check_digest(digest: str) -> None:
    if not DIGEST_RE.match(digest):
        raise invalid(f"Invalid digest {digest!r}: expected sha256:<64 hex digits>.", "digest")


def check_labels(labels: dict[str, str]) -> None:
    if len(labels) > 64:
        raise invalid("A repository may have at most 64 labels.", "repository.labels")
    for key, value in labels.items():
        if not LABEL_KEY_RE.match(key) or not LABEL_VALUE_RE.match(value):
            raise invalid(
                f"Invalid label {key}={value!r}: keys start with a lowercase letter; keys and "
                "values use lowercase letters, digits, '_' and '-', at most 63 characters.",
                "repository.labels",
            )


# -- lists: filters, ordering, pages ----------------------------------------------------------

_TERM_RE = re.compile(r'^\s*([A-Za-z_.]+)\s*=\s*"([^"]*)"\s*$')


def parse_filter(text: str, fields: Sequence[str]) -> list[tuple[str, str]]:
    """`name="..."` terms joined by AND (case-insensitive names; `*` is a wildcard)."""
    if not text.strip():
        return []
    terms = []
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE):
        match = _TERM_RE.match(part)
        if not match or match[1].lower() not in fields:
            supported = ", ".join(f'{f}="..."' for f in fields)
            raise invalid(
                f"Invalid filter {text!r}: supported are {supported}, joined by AND.", "filter"
            )
        terms.append((match[1].lower(), match[2]))
    return terms


def wildcard_match(value: str, pattern: str) -> bool:
    # Only `*` is special, as the API documents; escape fnmatch's other metacharacters.
    escaped = re.sub(r"([?\[\]])", r"[\1]", pattern)
    return fnmatch.fnmatchcase(value, escaped)


def order(items: list[T], order_by: str, keys: dict[str, Callable[[T], Any]]) -> list[T]:
    """Sort by `field [asc|desc], ...` (snake or camel case field names)."""
    if not order_by.strip():
        return items
    specs: list[tuple[Callable[[T], Any], bool]] = []
    for part in order_by.split(","):
        words = part.split()
        if (
            not words
            or len(words) > 2
            or (len(words) == 2 and words[1].lower() not in ("asc", "desc"))
        ):
            raise invalid(f"Invalid order_by {order_by!r}.", "order_by")
        name = re.sub(r"(?<!^)([A-Z])", r"_\1", words[0]).lower()
        if name not in keys:
            raise invalid(
                f"Invalid order_by field {words[0]!r}: supported are {', '.join(sorted(keys))}.",
                "order_by",
            )
        specs.append((keys[name], len(words) == 2 and words[1].lower() == "desc"))
    result = list(items)
    for key, descending in reversed(specs):  # stable sorts, least significant key first
        result.sort(key=key, reverse=descending)
    return result


def page(items: list[T], page_size: int, page_token: str) -> tuple[list[T], str]:
    """One page and the token for the next (empty at the end)."""
    if page_size < 0:
        raise invalid("page_size must not be negative.", "page_size")
    size = min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    start = 0
    if page_token:
        try:
            start = int(base64.urlsafe_b64decode(page_token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            raise invalid(f"Invalid page token {page_token!r}.", "page_token") from None
        if start < 0:
            raise invalid(f"Invalid page token {page_token!r}.", "page_token")
    end = start + size
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
    return items[start:end], token


def rpc_error_status(err: RpcError) -> int:
    """The HTTP status Google's JSON APIs use for a gRPC code (admin endpoint answers)."""
    return {
        "INVALID_ARGUMENT": 400,
        "FAILED_PRECONDITION": 400,
        "NOT_FOUND": 404,
        "ALREADY_EXISTS": 409,
        "ABORTED": 409,
        "PERMISSION_DENIED": 403,
    }.get(err.code.name, 500)
