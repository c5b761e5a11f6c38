"""The docker read side of the emulated Artifact Registry, and tags.

`ArtifactMethods` is mixed into the module class; it serves GetDockerImage/ListDockerImages,
packages, versions and tags of `API`, and the lookups the write side shares.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from google.cloud import artifactregistry_v1 as ar
from google.protobuf import empty_pb2

from runctl.emulator import artifactregistry_messages as msg
from runctl.emulator.artifactregistry_model import (
    ImageRecord,
    PackageRecord,
    RepoRecord,
    RepoRef,
    check_tag,
    iam_resource_name,
    order,
    page,
    parse_docker_image_rest,
    parse_filter,
    parse_package_rest,
    parse_repo_ref,
    wildcard_match,
)
from runctl.emulator.rpc import (
    Api,
    Call,
    already_exists,
    failed_precondition,
    invalid,
    not_found,
)

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

API = Api(
    "google.devtools.artifactregistry.v1.ArtifactRegistry", api="artifactregistry.googleapis.com"
)


def name_resource(request: Any) -> str:
    return iam_resource_name(str(request.name))


def parent_resource(request: Any) -> str:
    return iam_resource_name(str(request.parent))


class ArtifactMethods:
    """Served through `API` by the module class, which owns `_repos`."""

    emulator: Emulator
    _repos: dict[str, RepoRecord]

    # -- lookups ---------------------------------------------------------------------------------

    def _project_id(self, project: str) -> str:
        record = self.emulator.projects.find(project)
        if record is None:
            raise not_found(f"Project {project!r} not found.")
        return record.project_id

    def _repo(self, ref: RepoRef) -> RepoRecord:
        key = (
            f"projects/{self._project_id(ref.project)}/locations/{ref.location}"
            f"/repositories/{ref.repo}"
        )
        rec = self._repos.get(key)
        if rec is None:
            raise not_found(f'Repository "{key}" not found.')
        return rec

    def _repo_only(self, name: str, field_name: str = "name") -> RepoRecord:
        ref = parse_repo_ref(name, field_name)
        if ref.rest:
            raise invalid(f"Invalid repository name {name!r}.", field_name)
        return self._repo(ref)

    @staticmethod
    def _package(rec: RepoRecord, image: str) -> PackageRecord:
        pkg = rec.packages.get(image)
        if pkg is None:
            raise not_found(f'Package "{rec.package_name(image)}" not found.')
        return pkg

    def _package_at(self, name: str, kind: str | None) -> tuple[RepoRecord, PackageRecord, str]:
        ref = parse_repo_ref(name)
        image, leaf = parse_package_rest(ref.rest, name, kind)
        rec = self._repo(ref)
        return rec, self._package(rec, image), leaf

    def _version_at(self, name: str) -> tuple[RepoRecord, PackageRecord, ImageRecord]:
        rec, pkg, digest = self._package_at(name, "versions")
        img = pkg.images.get(digest)
        if img is None:
            raise not_found(f'Version "{name}" not found.')
        return rec, pkg, img

    # -- docker images ---------------------------------------------------------------------------

    @API.method(
        "GetDockerImage",
        ar.GetDockerImageRequest,
        ar.DockerImage,
        mutating=False,
        resource=name_resource,
        permission="artifactregistry.dockerimages.get",
    )
    def get_docker_image(self, request: ar.GetDockerImageRequest, call: Call) -> Any:
        ref = parse_repo_ref(request.name)
        image, digest = parse_docker_image_rest(ref.rest, request.name)
        rec = self._repo(ref)
        pkg = rec.packages.get(image)
        img = pkg.images.get(digest) if pkg else None
        if pkg is None or img is None:
            raise not_found(f'Docker image "{request.name}" not found.')
        return msg.docker_image(rec, pkg, img)

    @API.method(
        "ListDockerImages",
        ar.ListDockerImagesRequest,
        ar.ListDockerImagesResponse,
        mutating=False,
        resource=parent_resource,
        permission="artifactregistry.dockerimages.list",
    )
    def list_docker_images(self, request: ar.ListDockerImagesRequest, call: Call) -> Any:
        rec = self._repo_only(request.parent, "parent")
        pairs = sorted(
            ((pkg, img) for pkg in rec.packages.values() for img in pkg.images.values()),
            key=lambda pair: rec.image_name(pair[0].name, pair[1].digest),
        )
        pairs = order(
            pairs,
            request.order_by,
            {
                "name": lambda p: rec.image_name(p[0].name, p[1].digest),
                # Equal timestamps fall back to push order, so "newest first" is exact.
                "update_time": lambda p: (p[1].update_time, p[1].seq),
                "upload_time": lambda p: (p[1].upload_time, p[1].seq),
                "build_time": lambda p: (p[1].build_time, p[1].seq),
                "image_size_bytes": lambda p: p[1].size_bytes,
            },
        )
        items, token = page(pairs, request.page_size, request.page_token)
        return ar.ListDockerImagesResponse(
            docker_images=[msg.docker_image(rec, pkg, img) for pkg, img in items],
            next_page_token=token,
        )

    # -- packages and versions -------------------------------------------------------------------
    @API.method(
        "GetPackage",
        ar.GetPackageRequest,
        ar.Package,
        mutating=False,
        resource=name_resource,
        permission="artifactregistry.packages.get",
    )
    def get_package(self, request: ar.GetPackageRequest, call: Call) -> Any:
        rec, pkg, _ = self._package_at(request.name, None)
        return msg.package(rec, pkg)

    @API.method(
        "ListPackages",
        ar.ListPackagesRequest,
        ar.ListPackagesResponse,
        mutating=False,
        resource=parent_resource,
        permission="artifactregistry.packages.list",
    )
    def list_packages(self, request: ar.ListPackagesRequest, call: Call) -> Any:
        rec = self._repo_only(request.parent, "parent")
        pkgs = sorted(rec.packages.values(), key=lambda p: rec.package_name(p.name))
        for _, pattern in parse_filter(request.filter, ("name",)):
            pattern = self.emulator.projects.canonical(pattern)
            pkgs = [p for p in pkgs if wildcard_match(rec.package_name(p.name), pattern)]
        pkgs = order(
            pkgs,
            request.order_by,
            {
                "name": lambda p: rec.package_name(p.name),
                "create_time": lambda p: p.create_time,
                "update_time": lambda p: p.update_time,
            },
        )
        items, token = page(pkgs, request.page_size, request.page_token)
        return ar.ListPackagesResponse(
            packages=[msg.package(rec, p) for p in items], next_page_token=token
        )

    @API.method(
        "GetVersion",
        ar.GetVersionRequest,
        ar.Version,
        mutating=False,
        resource=name_resource,
        permission="artifactregistry.versions.get",
    )
    def get_version(self, request: ar.GetVersionRequest, call: Call) -> Any:
        rec, pkg, img = self._version_at(request.name)
        return msg.version(rec, pkg, img, full=request.view == ar.VersionView.FULL)

    @API.method(
        "ListVersions",
        ar.ListVersionsRequest,
        ar.ListVersionsResponse,
        mutating=False,
        resource=parent_resource,
        permission="artifactregistry.versions.list",
    )
    def list_versions(self, request: ar.ListVersionsRequest, call: Call) -> Any:
        rec, pkg, leaf = self._package_at(request.parent, "versions")
        if leaf:
            raise invalid(f"Invalid parent {request.parent!r}.", "parent")
        imgs = sorted(pkg.images.values(), key=lambda i: i.digest)
        prefix = f"{rec.package_name(pkg.name)}/versions/"
        for _, pattern in parse_filter(request.filter, ("name",)):
            pattern = self.emulator.projects.canonical(pattern)
            imgs = [i for i in imgs if wildcard_match(prefix + i.digest, pattern)]
        imgs = order(
            imgs,
            request.order_by,
            {
                "name": lambda i: i.digest,
                "create_time": lambda i: (i.upload_time, i.seq),
                "update_time": lambda i: (i.update_time, i.seq),
            },
        )
        items, token = page(imgs, request.page_size, request.page_token)
        full = request.view == ar.VersionView.FULL
        return ar.ListVersionsResponse(
            versions=[msg.version(rec, pkg, i, full=full) for i in items], next_page_token=token
        )

    # -- tags ------------------------------------------------------------------------------------

    def _tag_at(self, name: str) -> tuple[RepoRecord, PackageRecord, str]:
        rec, pkg, tag = self._package_at(name, "tags")
        if not tag or tag not in pkg.tags:
            raise not_found(f'Tag "{name}" not found.')
        return rec, pkg, tag

    def _digest_of_version(self, rec: RepoRecord, pkg: PackageRecord, version: str) -> str:
        """The digest a tag's `version` names; it must be a version of the same package."""
        if not version:
            raise invalid("tag.version is required.", "tag.version")
        prefix = f"{rec.package_name(pkg.name)}/versions/"
        canonical = iam_resource_name(self.emulator.projects.canonical(version))
        if not canonical.startswith(prefix):
            raise invalid(f"tag.version must be a version of {pkg.name!r}.", "tag.version")
        digest = unquote(canonical[len(prefix) :])
        if digest not in pkg.images:
            raise not_found(f'Version "{version}" not found.')
        return digest

    @staticmethod
    def _check_mutable(rec: RepoRecord, tag: str) -> None:
        if rec.immutable_tags:
            raise failed_precondition(
                f"Tag {tag!r} cannot be moved or deleted: repository {rec.name} has immutable tags."
            )

    def _move_tag(self, pkg: PackageRecord, tag: str, digest: str, now: float) -> None:
        old = pkg.tags.get(tag)
        if old == digest:
            return
        if old is not None and old in pkg.images:
            pkg.images[old].update_time = now
        pkg.tags[tag] = digest
        pkg.images[digest].update_time = now
        pkg.update_time = now

    @API.method(
        "GetTag",
        ar.GetTagRequest,
        ar.Tag,
        mutating=False,
        resource=name_resource,
        permission="artifactregistry.tags.get",
    )
    def get_tag(self, request: ar.GetTagRequest, call: Call) -> Any:
        rec, pkg, tag = self._tag_at(request.name)
        return msg.tag(rec, pkg, tag)

    @API.method(
        "ListTags",
        ar.ListTagsRequest,
        ar.ListTagsResponse,
        mutating=False,
        resource=parent_resource,
        permission="artifactregistry.tags.list",
    )
    def list_tags(self, request: ar.ListTagsRequest, call: Call) -> Any:
        rec, pkg, leaf = self._package_at(request.parent, None)
        tags = [msg.tag(rec, pkg, t) for t in sorted(pkg.tags)]
        for fieldname, pattern in parse_filter(request.filter, ("name", "version")):
            pattern = self.emulator.projects.canonical(pattern)
            tags = [t for t in tags if wildcard_match(getattr(t, fieldname), pattern)]
        items, token = page(tags, request.page_size, request.page_token)
        return ar.ListTagsResponse(tags=items, next_page_token=token)

    @API.method(
        "CreateTag",
        ar.CreateTagRequest,
        ar.Tag,
        mutating=True,
        resource=parent_resource,
        permission="artifactregistry.tags.create",
    )
    def create_tag(self, request: ar.CreateTagRequest, call: Call) -> Any:
        rec, pkg, _ = self._package_at(request.parent, None)
        check_tag(request.tag_id)
        if request.tag_id in pkg.tags:
            raise already_exists(
                f'Tag "{rec.package_name(pkg.name)}/tags/{request.tag_id}" exists.'
            )
        digest = self._digest_of_version(rec, pkg, request.tag.version)
        self._move_tag(pkg, request.tag_id, digest, time.time())
        return msg.tag(rec, pkg, request.tag_id)

    @API.method(
        "UpdateTag",
        ar.UpdateTagRequest,
        ar.Tag,
        mutating=True,
        resource=lambda r: iam_resource_name(str(r.tag.name)),
        permission="artifactregistry.tags.update",
    )
    def update_tag(self, request: ar.UpdateTagRequest, call: Call) -> Any:
        rec, pkg, tag = self._tag_at(request.tag.name)
        paths = list(request.update_mask.paths) if "update_mask" in request else []
        if any(p != "version" for p in paths):
            raise invalid("Only the version of a tag can be updated.", "update_mask")
        digest = self._digest_of_version(rec, pkg, request.tag.version)
        if digest != pkg.tags[tag]:
            self._check_mutable(rec, tag)
            self._move_tag(pkg, tag, digest, time.time())
        return msg.tag(rec, pkg, tag)

    @API.method(
        "DeleteTag",
        ar.DeleteTagRequest,
        empty_pb2.Empty,
        mutating=True,
        resource=name_resource,
        permission="artifactregistry.tags.delete",
    )
    def delete_tag(self, request: ar.DeleteTagRequest, call: Call) -> Any:
        rec, pkg, tag = self._tag_at(request.name)
        self._check_mutable(rec, tag)
        now = time.time()
        digest = pkg.tags.pop(tag)
        if digest in pkg.images:
            pkg.images[digest].update_time = now
        return empty_pb2.Empty()
