"""What a revision says about itself: image, commit, deployer, pinned secrets, readiness."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.cloud import run_v2

from runctl.deploy.desired import ANN_COMMIT, ANN_DEPLOYER, ANN_DIGEST, COMMIT_LABEL
from runctl.deploy.traffic import short


@dataclass
class RevisionInfo:
    name: str
    created: str
    image: str
    digest: str
    commit: str
    deployer: str
    secrets: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "revision": self.name,
            "created": self.created,
            "image": self.image,
            "digest": self.digest or None,
            "commit": self.commit or None,
            "deployer": self.deployer or None,
            "secrets": self.secrets,
            "ready": self.ready,
            "reason": self.reason or None,
        }


def _secret_name(project: str, secret: str, version: str) -> str:
    if secret.startswith("projects/"):
        return f"{secret}/versions/{version or 'latest'}"
    return f"projects/{project}/secrets/{secret}/versions/{version or 'latest'}"


def describe(revision: run_v2.Revision, project: str) -> RevisionInfo:
    container = revision.containers[0] if revision.containers else run_v2.Container()
    image = container.image
    digest = revision.annotations.get(ANN_DIGEST, "")
    if not digest and "@" in image:
        digest = image.split("@", 1)[1]
    secrets = {}
    for env in container.env:
        if "value_source" in env:
            ref = env.value_source.secret_key_ref
            secrets[env.name] = _secret_name(project, ref.secret, ref.version)
    mounts = {m.name: m.mount_path for m in container.volume_mounts}
    for volume in revision.volumes:
        if "secret" in volume and volume.name in mounts:
            for item in volume.secret.items:
                path = f"{mounts[volume.name].rstrip('/')}/{item.path}"
                secrets[path] = _secret_name(project, volume.secret.secret, item.version)
    ready, reason = False, ""
    for condition in revision.conditions:
        if condition.type_ == "Ready":
            ready = condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
            reason = "" if ready else (condition.message or condition.state.name)
    created = revision.create_time.isoformat() if revision.create_time else ""
    return RevisionInfo(
        name=short(revision.name),
        created=created,
        image=image,
        digest=digest,
        commit=revision.annotations.get(ANN_COMMIT) or revision.labels.get(COMMIT_LABEL, ""),
        deployer=revision.annotations.get(ANN_DEPLOYER, "") or revision.creator,
        secrets=secrets,
        ready=ready,
        reason=reason,
    )
