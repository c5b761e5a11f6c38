"""Docker images and tags: seeding through the admin endpoint and `push_image`, reading them back
through the official client the way deploy, build and preflight do."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from google.api_core import exceptions
from google.cloud import artifactregistry_v1 as ar

from runctl.emulator.rpc import RpcError

PROJECT = "test-project"
REGION = "europe-west1"
REPO = f"projects/{PROJECT}/locations/{REGION}/repositories/apps"
IMAGE = f"{REGION}-docker.pkg.dev/{PROJECT}/apps/hello"
SHA1 = "1" * 40
SHA2 = "2" * 40


def _post_image(emulator, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        emulator.http_base + "/_emulator/images",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _seed(emulator, image: str = IMAGE, **body) -> str:
    status, doc = _post_image(emulator, {"image": image, **body})
    assert status == 200, doc
    return str(doc["digest"])


@pytest.fixture
def registry(emulator, clients):
    client = clients.artifact_registry()
    client.create_repository(
        parent=f"projects/{PROJECT}/locations/{REGION}",
        repository_id="apps",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result()
    return client


def _digest_of_tag(registry, tag: str, package: str = "hello") -> str:
    found = registry.get_tag(name=f"{REPO}/packages/{package}/tags/{tag}")
    return found.version.rsplit("/versions/", 1)[1]


def test_seeded_image_is_found_by_tag_then_by_digest(emulator, registry):
    status, doc = _post_image(emulator, {"image": IMAGE, "tags": [SHA1], "size_bytes": 123456})
    assert status == 200
    digest = doc["digest"]
    assert digest.startswith("sha256:") and len(digest) == 71
    assert doc["uri"] == f"{IMAGE}@{digest}"

    assert _digest_of_tag(registry, SHA1) == digest
    image = registry.get_docker_image(name=f"{REPO}/dockerImages/hello@{digest}")
    assert image.uri == f"{IMAGE}@{digest}"
    assert list(image.tags) == [SHA1]
    assert image.image_size_bytes == 123456
    assert image.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert image.upload_time and image.build_time and image.update_time
    assert registry.get_repository(name=REPO).size_bytes == 123456


def test_tag_version_and_package_names_follow_the_api(emulator, registry):
    digest = _seed(emulator, f"{IMAGE}-worker", tags=["v1"], digest="sha256:" + "ab" * 32)

    version = registry.get_version(
        request={
            "name": f"{REPO}/packages/hello-worker/versions/{digest}",
            "view": ar.VersionView.FULL,
        }
    )
    assert [t.name for t in version.related_tags] == [f"{REPO}/packages/hello-worker/tags/v1"]
    assert version.metadata["name"] == f"{REPO}/dockerImages/hello-worker@{digest}"
    assert registry.get_package(name=f"{REPO}/packages/hello-worker").display_name == (
        "hello-worker"
    )


def test_image_names_with_slashes_are_url_encoded_in_resource_names(emulator, registry):
    digest = _seed(emulator, f"{REGION}-docker.pkg.dev/{PROJECT}/apps/team/api", tags=["v1"])

    assert _digest_of_tag(registry, "v1", package="team%2Fapi") == digest
    image = registry.get_docker_image(name=f"{REPO}/dockerImages/team%2Fapi@{digest}")
    assert image.name == f"{REPO}/dockerImages/team%2Fapi@{digest}"
    assert image.uri == f"{REGION}-docker.pkg.dev/{PROJECT}/apps/team/api@{digest}"
    assert [p.name for p in registry.list_packages(parent=REPO)] == [f"{REPO}/packages/team%2Fapi"]


def test_pushing_a_tag_again_moves_it_to_the_new_image(emulator, registry):
    first = _seed(emulator, tags=[SHA1, "latest"])
    second = _seed(emulator, tags=["latest"])

    assert first != second
    assert _digest_of_tag(registry, "latest") == second
    assert _digest_of_tag(registry, SHA1) == first
    old = registry.get_docker_image(name=f"{REPO}/dockerImages/hello@{first}")
    assert list(old.tags) == [SHA1]
    tagged = registry.list_tags(
        request={
            "parent": f"{REPO}/packages/hello",
            "filter": f'version="{REPO}/packages/hello/versions/{second}"',
        }
    )
    assert [t.name.rsplit("/", 1)[1] for t in tagged] == ["latest"]


def test_list_docker_images_newest_first_and_paged(emulator, registry):
    digests = [_seed(emulator, tags=[f"build-{n}"]) for n in range(3)]

    newest = registry.list_docker_images(
        request={"parent": REPO, "order_by": "update_time desc", "page_size": 1}
    )
    first_page = next(iter(newest.pages))
    assert [i.name.rsplit("@", 1)[1] for i in first_page.docker_images] == [digests[-1]]
    assert first_page.next_page_token
    everything = registry.list_docker_images(
        request={"parent": REPO, "order_by": "update_time desc", "page_size": 2}
    )
    assert [i.name.rsplit("@", 1)[1] for i in everything] == digests[::-1]
    with pytest.raises(exceptions.InvalidArgument):
        registry.list_docker_images(request={"parent": REPO, "order_by": "colour"})


def test_missing_tag_and_image_are_not_found(emulator, registry):
    _seed(emulator, tags=[SHA1])

    with pytest.raises(exceptions.NotFound):
        registry.get_tag(name=f"{REPO}/packages/hello/tags/{SHA2}")
    with pytest.raises(exceptions.NotFound):
        registry.get_docker_image(name=f"{REPO}/dockerImages/hello@sha256:{'0' * 64}")
    with pytest.raises(exceptions.NotFound):
        registry.list_tags(parent=f"{REPO}/packages/nope")


def test_tags_can_be_created_moved_and_deleted_through_the_api(emulator, registry):
    first = _seed(emulator, tags=[SHA1])
    second = _seed(emulator, tags=[SHA2])
    package = f"{REPO}/packages/hello"

    made = registry.create_tag(
        parent=package, tag_id="stable", tag=ar.Tag(version=f"{package}/versions/{first}")
    )
    assert made.name == f"{package}/tags/stable"
    with pytest.raises(exceptions.AlreadyExists):
        registry.create_tag(
            parent=package, tag_id="stable", tag=ar.Tag(version=f"{package}/versions/{first}")
        )
    registry.update_tag(
        tag=ar.Tag(name=f"{package}/tags/stable", version=f"{package}/versions/{second}"),
        update_mask={"paths": ["version"]},
    )
    assert _digest_of_tag(registry, "stable") == second
    registry.delete_tag(name=f"{package}/tags/stable")
    with pytest.raises(exceptions.NotFound):
        registry.get_tag(name=f"{package}/tags/stable")


def test_images_endpoint_needs_the_repository_unless_asked_to_create_it(emulator, clients):
    image = f"{REGION}-docker.pkg.dev/{PROJECT}/fresh/hello"

    status, doc = _post_image(emulator, {"image": image, "tags": [SHA1]})
    assert status == 404
    assert "fresh" in doc["error"]["message"]

    status, doc = _post_image(emulator, {"image": image, "tags": [SHA1], "create_repository": True})
    assert status == 200
    repo = clients.artifact_registry().get_repository(
        name=f"projects/{PROJECT}/locations/{REGION}/repositories/fresh"
    )
    assert repo.format_ == ar.Repository.Format.DOCKER


@pytest.mark.parametrize(
    "body",
    [
        {"image": "docker.io/library/nginx", "tags": ["x"]},
        {"image": IMAGE, "tags": "latest"},
        {"image": IMAGE, "tags": ["not a tag"]},
        {"image": IMAGE, "digest": "sha256:short"},
        {"image": IMAGE, "size_bytes": -1},
        {"image": f"{REGION}-docker.pkg.dev/{PROJECT}/apps/Hello"},
    ],
)
def test_images_endpoint_rejects_bad_input_with_400(emulator, registry, body):
    status, doc = _post_image(emulator, body)
    assert status == 400, doc


def test_push_and_resolve_interface(emulator, registry):
    module = emulator.module("artifactregistry")
    with emulator.lock:
        digest = module.push_image(IMAGE, tags=[SHA1, "latest"], size_bytes=10)
        pinned = module.push_image(IMAGE, tags=[], digest="sha256:" + "cd" * 32)

        assert module.resolve_image(f"{IMAGE}:{SHA1}") == digest
        assert module.resolve_image(IMAGE) == digest  # no tag means :latest
        assert module.resolve_image(f"{IMAGE}@{digest}") == digest
        assert module.resolve_image(f"{IMAGE}@{pinned}") == pinned
        assert module.resolve_image(f"{IMAGE}:{SHA2}") is None
        assert module.resolve_image(f"{IMAGE}@sha256:{'0' * 64}") is None
        assert module.resolve_image(f"{REGION}-docker.pkg.dev/{PROJECT}/nope/hello:v1") is None

        for public in (
            "docker.io/library/nginx:1.27",
            "gcr.io/google-samples/hello-app:1.0",
            "us-docker.pkg.dev/cloudrun/container/hello",
        ):
            fake = module.resolve_image(public)
            assert fake and fake.startswith("sha256:") and fake == module.resolve_image(public)

        with pytest.raises(RpcError) as err:
            module.push_image(f"{REGION}-docker.pkg.dev/{PROJECT}/nope/hello", tags=["v1"])
        assert err.value.code.name == "NOT_FOUND"
