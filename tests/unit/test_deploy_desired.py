"""The desired Cloud Run service built from configuration."""

from __future__ import annotations

from google.cloud import run_v2

from runctl.config.model import EmulatorSettings
from runctl.deploy.desired import (
    ANN_COMMIT,
    ANN_DIGEST,
    ANN_EMULATOR_RUN,
    COMMIT_LABEL,
    merge_onto_live,
    revision_name,
)

from .deploy_fixtures import COMMIT, DIGEST, IMAGE, desired, service


def test_unversioned_secret_is_pinned_never_latest():
    svc = desired()
    env = {e.name: e for e in svc.template.containers[0].env}
    ref = env["DATABASE_URL"].value_source.secret_key_ref
    assert (ref.secret, ref.version) == ("db-url", "3")
    versions = [item.version for v in svc.template.volumes for item in v.secret.items]
    assert versions == ["2"] and "latest" not in versions


def test_secret_file_is_a_volume_mounted_on_its_directory():
    svc = desired()
    (volume,) = svc.template.volumes
    (mount,) = svc.template.containers[0].volume_mounts
    assert volume.secret.secret == "tls-cert"
    assert volume.secret.items[0].path == "tls.crt"
    assert (mount.name, mount.mount_path) == (volume.name, "/secrets")


def test_revision_records_commit_digest_and_deploys_by_digest():
    svc = desired()
    assert svc.template.containers[0].image == IMAGE
    assert svc.template.labels[COMMIT_LABEL] == COMMIT
    assert svc.template.annotations[ANN_COMMIT] == COMMIT
    assert svc.template.annotations[ANN_DIGEST] == DIGEST
    assert svc.template.revision == "api-0123456-aaaaa"
    assert svc.name == "projects/acme/locations/europe-west1/services/api"


def test_resources_scaling_and_reserved_settings():
    svc = desired(service(memory="1Gi", cpu="2", min_instances=1, max_instances=5, concurrency=40))
    container = svc.template.containers[0]
    assert dict(container.resources.limits) == {"cpu": "2", "memory": "1Gi"}
    assert svc.template.scaling.min_instance_count == 1
    assert svc.template.scaling.max_instance_count == 5
    assert svc.template.max_instance_request_concurrency == 40
    assert container.ports[0].container_port == 8080


def test_emulator_command_is_only_sent_to_the_emulator():
    svc = service(emulator=EmulatorSettings(run="python app.py"))
    assert ANN_EMULATOR_RUN not in desired(svc).template.annotations
    assert desired(svc, emulator=True).template.annotations[ANN_EMULATOR_RUN] == "python app.py"


def test_revision_names_are_unique_and_fit_cloud_run():
    names = {revision_name("a" * 49, COMMIT) for _ in range(50)}
    assert len(names) == 50
    assert all(len(n) <= 63 and n.startswith("a" * 49 + "-0123456-") for n in names)


def test_update_keeps_fields_runctl_does_not_manage():
    live = run_v2.Service(desired())
    live.description = "set in the console"
    live.template.session_affinity = True
    live.template.annotations["example.com/owner"] = "ops"
    merged = merge_onto_live(desired(service(memory="1Gi")), live)
    assert merged.description == "set in the console"
    assert merged.template.session_affinity is True
    assert merged.template.annotations["example.com/owner"] == "ops"
    assert merged.template.containers[0].resources.limits["memory"] == "1Gi"
