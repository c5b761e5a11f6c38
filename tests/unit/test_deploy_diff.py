"""The plan's field-by-field diff between desired and live services."""

from __future__ import annotations

from google.cloud import run_v2

from runctl.deploy.diff import diff, normalise_cpu, normalise_memory

from .deploy_fixtures import desired, service


def rendered(changes):
    return [c.render() for c in changes]


def test_identical_services_have_no_diff_even_with_another_revision_name_and_deployer():
    live = desired(revision="api-0123456-zzzzz", deployer="user:someone-else@example.com")
    assert diff(desired(), live) == []


def test_memory_change_reads_old_to_new():
    assert rendered(diff(desired(service(memory="1Gi")), desired())) == ["~ memory: 512Mi → 1Gi"]


def test_env_added_and_removed_are_named():
    new = desired(service(env=(("LOG_LEVEL", "info"), ("FEATURE", "on"))))
    assert rendered(diff(new, desired())) == ["+ env FEATURE"]
    assert rendered(diff(desired(), new)) == ["- env FEATURE"]


def test_new_secret_version_shows_the_pin_change():
    changes = rendered(diff(desired(pins={"db-url": 4}), desired()))
    assert changes == ["~ secret DATABASE_URL: db-url:3 → db-url:4"]


def test_cloud_run_defaults_and_quantity_forms_are_not_differences():
    live = desired()
    container = live.template.containers[0]
    container.resources.limits = {"cpu": "1000m", "memory": "512Mi"}
    live.template.max_instance_request_concurrency = 0  # Cloud Run's default is 80
    assert diff(desired(), live) == []


def test_secret_named_by_full_resource_name_is_the_same_secret():
    live = desired()
    env = live.template.containers[0].env
    for var in env:
        if var.name == "DATABASE_URL":
            var.value_source.secret_key_ref.secret = "projects/acme/secrets/db-url"
    assert diff(desired(), live) == []


def test_first_deploy_lists_everything_as_added():
    changes = diff(desired(), None)
    assert changes and all(c.op == "+" for c in changes)
    assert "+ memory: 512Mi" in rendered(changes)


def test_quantities_normalise():
    assert normalise_cpu("1000m") == normalise_cpu("1") == "1"
    assert normalise_cpu("0.5") == normalise_cpu("500m") == "500m"
    assert normalise_memory("1024Mi") == normalise_memory("1Gi") == "1Gi"
    assert normalise_memory("2G") == "2G"


def test_ingress_change():
    changes = rendered(diff(desired(service(ingress="internal")), desired()))
    assert changes == ["~ ingress: all → internal_only"]


def test_empty_live_template_does_not_crash():
    assert diff(desired(), run_v2.Service(name="x"))
