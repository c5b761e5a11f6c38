"""Artifact Registry records rendered as the API's messages."""

from __future__ import annotations

from google.cloud import artifactregistry_v1 as ar
from google.protobuf import timestamp_pb2

from runctl.emulator.artifactregistry_model import ImageRecord, PackageRecord, RepoRecord


def timestamp(epoch: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(epoch * 1_000_000_000))
    return stamp


def repository(rec: RepoRecord) -> ar.Repository:
    message = ar.Repository(
        name=rec.name,
        format_=ar.Repository.Format.__members__[rec.format],
        mode=ar.Repository.Mode.__members__[rec.mode],
        description=rec.description,
        labels=rec.labels,
        create_time=timestamp(rec.create_time),
        update_time=timestamp(rec.update_time),
        size_bytes=rec.size_bytes,
        registry_uri=rec.registry_uri,
    )
    if rec.format == "DOCKER":
        message.docker_config = ar.Repository.DockerRepositoryConfig(
            immutable_tags=rec.immutable_tags
        )
    return message


def docker_image(rec: RepoRecord, pkg: PackageRecord, img: ImageRecord) -> ar.DockerImage:
    return ar.DockerImage(
        name=rec.image_name(pkg.name, img.digest),
        uri=rec.image_uri(pkg.name, img.digest),
        tags=pkg.tags_of(img.digest),
        image_size_bytes=img.size_bytes,
        upload_time=timestamp(img.upload_time),
        media_type=img.media_type,
        build_time=timestamp(img.build_time),
        update_time=timestamp(img.update_time),
    )


def package(rec: RepoRecord, pkg: PackageRecord) -> ar.Package:
    return ar.Package(
        name=rec.package_name(pkg.name),
        display_name=pkg.name,
        create_time=timestamp(pkg.create_time),
        update_time=timestamp(pkg.update_time),
    )


def tag(rec: RepoRecord, pkg: PackageRecord, tag_id: str) -> ar.Tag:
    return ar.Tag(
        name=f"{rec.package_name(pkg.name)}/tags/{tag_id}",
        version=f"{rec.package_name(pkg.name)}/versions/{pkg.tags[tag_id]}",
    )


def version(rec: RepoRecord, pkg: PackageRecord, img: ImageRecord, *, full: bool) -> ar.Version:
    # Docker versions carry the image's details as untyped metadata with camelCase keys
    # (DockerImage's documentation lists them); sizes are strings there, as int64 in JSON.
    build_time = timestamp(img.build_time).ToJsonString()
    message = ar.Version(
        name=f"{rec.package_name(pkg.name)}/versions/{img.digest}",
        create_time=timestamp(img.upload_time),
        update_time=timestamp(img.update_time),
        metadata={
            "name": rec.image_name(pkg.name, img.digest),
            "imageSizeBytes": str(img.size_bytes),
            "mediaType": img.media_type,
            "buildTime": build_time,
        },
    )
    if full:
        message.related_tags = [tag(rec, pkg, t) for t in pkg.tags_of(img.digest)[:100]]
    return message
