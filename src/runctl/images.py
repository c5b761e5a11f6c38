"""Finding the image built for a commit: `IMAGE:<full sha>` in Artifact Registry, by digest.

Tags are mutable and `latest` races; a digest names exactly the bytes that were built, so runctl
always deploys `...@sha256:...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from runctl.apierrors import translate
from runctl.config.model import Registry
from runctl.gcp import Clients


@dataclass(frozen=True)
class ImageRef:
    repository_image: str  # LOCATION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE
    tag: str
    digest: str  # sha256:...

    @property
    def uri(self) -> str:
        return f"{self.repository_image}@{self.digest}"


def package_name(registry: Registry, project: str, image: str) -> str:
    # Package ids are URL-encoded image paths: `web/api` is `web%2Fapi`.
    return f"{registry.repository_name(project)}/packages/{quote(image, safe='')}"


def find_tag(
    clients: Clients, registry: Registry, project: str, image: str, tag: str
) -> ImageRef | None:
    """The image tagged `tag`, or None. One GetTag call."""
    from google.api_core import exceptions

    name = f"{package_name(registry, project, image)}/tags/{tag}"
    try:
        found = clients.artifact_registry().get_tag(name=name)
    except exceptions.NotFound:
        return None
    except exceptions.GoogleAPICallError as err:
        raise translate(err, action="looking up the image", resource=name) from err
    digest = found.version.rsplit("/", 1)[-1]
    return ImageRef(registry.image_uri(project, image), tag, digest)


def split_uri(uri: str) -> tuple[str, str | None]:
    """`repo/image@sha256:x` → (`repo/image`, `sha256:x`); a tag or nothing → (uri, None)."""
    if "@" in uri:
        base, digest = uri.split("@", 1)
        return base, digest
    return uri, None
