"""The Cloud Build request for one image: a pure function of what was decided before it.

Steps: pull the previous image of this repository when there is one (the classic docker builder
only uses `--cache-from` layers that are present locally; the pull may fail without failing the
build), `docker build` with labels naming the commit, and `docker push`. `images` is set too, so
Cloud Build records the pushed digest in `results.images`. Never a `latest` tag: the tag is the
commit (or the commit plus `-dirty-<archive hash>`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud.devtools import cloudbuild_v1 as cb

DOCKER = "gcr.io/cloud-builders/docker"
REVISION_LABEL = "org.opencontainers.image.revision"
DIRTY_LABEL = "runctl.dirty"
BUILD_TAG = "runctl"
DIRTY_TAG = "dirty"
# Cloud Build rejects other tags at creation.
CLOUD_BUILD_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


@dataclass(frozen=True)
class BuildSpec:
    image: str  # LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE, no tag
    tag: str
    commit: str
    dirty: bool
    dockerfile: str  # relative to the context (the archive's root)
    source_bucket: str
    source_object: str
    source_generation: int  # 0: the object's latest generation
    timeout_s: float
    cache_from: str | None = None  # IMAGE:<previous tag>, when one exists
    machine_type: str | None = None
    logs_bucket: str | None = None  # gs://bucket; None: Cloud Build's default bucket

    @property
    def ref(self) -> str:
        return f"{self.image}:{self.tag}"


def build_tags(spec: BuildSpec) -> list[str]:
    tags = [BUILD_TAG, spec.commit] + ([DIRTY_TAG] if spec.dirty else [])
    bad = [t for t in tags if not CLOUD_BUILD_TAG_RE.match(t)]
    assert not bad, f"invalid Cloud Build tags {bad}"
    return tags


def docker_build_args(spec: BuildSpec) -> list[str]:
    args = ["build", "-t", spec.ref, "-f", spec.dockerfile]
    if spec.cache_from:
        args += ["--cache-from", spec.cache_from]
    args += ["--label", f"{REVISION_LABEL}={spec.commit}"]
    if spec.dirty:
        args += ["--label", f"{DIRTY_LABEL}=true"]
    return args + ["."]


def build_request(spec: BuildSpec) -> cb.Build:
    # Imported here: the Cloud Build client costs ~0.4 s to import, and a skipped build
    # (the image exists) must not pay for it.
    from google.cloud.devtools import cloudbuild_v1 as cb

    steps = []
    if spec.cache_from:
        steps.append(
            cb.BuildStep(
                id="pull-cache", name=DOCKER, args=["pull", spec.cache_from], allow_failure=True
            )  # fmt: skip
        )
    steps += [
        cb.BuildStep(id="build", name=DOCKER, args=docker_build_args(spec)),
        cb.BuildStep(id="push", name=DOCKER, args=["push", spec.ref]),
    ]
    build = cb.Build(
        source=cb.Source(
            storage_source=cb.StorageSource(
                bucket=spec.source_bucket,
                object_=spec.source_object,
                generation=spec.source_generation,
            )
        ),
        steps=steps,
        images=[spec.ref],
        tags=build_tags(spec),
        timeout=timedelta(seconds=int(spec.timeout_s)),
    )
    if spec.machine_type:
        machine = getattr(cb.BuildOptions.MachineType, spec.machine_type)
        build.options = cb.BuildOptions(machine_type=machine)
    if spec.logs_bucket:
        build.logs_bucket = spec.logs_bucket
    return build
