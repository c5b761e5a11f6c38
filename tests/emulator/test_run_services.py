"""Cloud Run Services through the official client: lifecycle, generations, etags, validation."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import run_v2
from google.protobuf import field_mask_pb2

from tests.emulator.run_support import (
    DEFAULT_SA,
    IMAGE,
    LATEST,
    PARENT,
    REGION,
    create,
    short,
    template,
    update,
)

State = run_v2.Condition.State


def test_create_returns_a_ready_service_serving_its_first_revision(clients, emulator):
    svc = create(clients)
    assert svc.name == f"{PARENT}/services/api"
    assert svc.uri.startswith(f"{emulator.http_base}/_run/api-") and svc.uri.endswith("-ew")
    assert svc.urls == [svc.uri]
    assert svc.generation == svc.observed_generation == 1
    assert not svc.reconciling
    assert svc.terminal_condition.type_ == "Ready"
    assert svc.terminal_condition.state == State.CONDITION_SUCCEEDED
    assert {c.type_: c.state for c in svc.conditions} == {
        "RoutesReady": State.CONDITION_SUCCEEDED,
        "ConfigurationsReady": State.CONDITION_SUCCEEDED,
    }
    assert short(svc.latest_ready_revision).startswith("api-00001-")
    assert svc.latest_created_revision == svc.latest_ready_revision
    [status] = svc.traffic_statuses
    assert (status.type_, status.percent, status.revision) == (
        LATEST,
        100,
        short(svc.latest_ready_revision),
    )
    assert svc.creator == svc.last_modifier == "owner@example.com"
    assert svc.uid and svc.etag and svc.create_time
    # Cloud Run fills in defaults: the runtime account, the port, the resources, the traffic.
    assert svc.template.service_account == DEFAULT_SA
    assert svc.template.containers[0].ports[0].container_port == 8080
    assert svc.traffic[0].type_ == LATEST and svc.traffic[0].percent == 100


def test_service_reconciles_until_its_operation_completes(clients, emulator):
    emulator.configure(operation_polls=3)
    services = clients.run_services()
    operation = services.create_service(
        parent=PARENT, service=run_v2.Service(template=template()), service_id="api"
    )
    midway = services.get_service(name=f"{PARENT}/services/api")
    assert midway.reconciling
    assert midway.generation == 1 and midway.observed_generation == 0
    assert midway.terminal_condition.state == State.CONDITION_RECONCILING
    assert isinstance(operation.metadata, run_v2.Service)
    done = operation.result()
    assert not done.reconciling and done.observed_generation == 1
    assert not services.get_service(name=done.name).reconciling


def test_template_change_creates_the_next_revision_and_traffic_change_does_not(clients):
    first = create(clients)
    second = update(clients, first, env={"LOG_LEVEL": "debug"}).result()
    assert second.generation == second.observed_generation == 2
    assert short(second.latest_ready_revision).startswith("api-00002-")
    assert second.traffic_statuses[0].revision == short(second.latest_ready_revision)

    pinned = run_v2.TrafficTarget(type_=2, revision=short(first.latest_ready_revision), percent=100)
    third = update(clients, second, traffic=[pinned]).result()
    assert third.generation == 3 and third.observed_generation == 3
    assert third.latest_created_revision == second.latest_created_revision
    revisions = clients.run_revisions().list_revisions(parent=third.name)
    assert [short(r.name)[:9] for r in revisions] == ["api-00002", "api-00001"]
    assert third.traffic_statuses[0].revision == short(first.latest_ready_revision)


def test_an_unchanged_update_changes_nothing(clients):
    first = create(clients)
    again = update(clients, first).result()
    assert again.generation == 1
    assert again.etag == first.etag
    assert len(list(clients.run_revisions().list_revisions(parent=first.name))) == 1


def test_stale_etag_is_aborted_and_changes_nothing(clients):
    first = create(clients)
    update(clients, first, env={"A": "1"}).result()
    with pytest.raises(exceptions.Aborted):
        update(clients, first, env={"A": "2"})
    current = clients.run_services().get_service(name=first.name)
    assert current.generation == 2
    assert current.template.containers[0].env[0].value == "1"
    with pytest.raises(exceptions.Aborted):
        clients.run_services().delete_service(request={"name": first.name, "etag": first.etag})


def test_validate_only_checks_but_changes_nothing(clients, emulator):
    services = clients.run_services()
    preview = services.create_service(
        request={
            "parent": PARENT,
            "service_id": "api",
            "service": run_v2.Service(template=template()),
            "validate_only": True,
        }
    ).result()
    assert preview.name == f"{PARENT}/services/api"
    assert preview.template.service_account == DEFAULT_SA  # defaults are populated
    with pytest.raises(exceptions.NotFound):
        services.get_service(name=f"{PARENT}/services/api")
    with pytest.raises(exceptions.InvalidArgument):
        services.create_service(
            request={
                "parent": PARENT,
                "service_id": "Bad_Name",
                "service": run_v2.Service(template=template()),
                "validate_only": True,
            }
        )

    svc = create(clients)
    changed = run_v2.Service(svc)
    changed.template = template(env={"X": "1"})
    request = run_v2.UpdateServiceRequest(service=changed, validate_only=True)
    emulator.calls.clear()
    assert services.update_service(request=request).result().template.containers[0].env[0].name
    after = services.get_service(name=svc.name)
    assert after.generation == 1 and after.etag == svc.etag
    assert len(list(clients.run_revisions().list_revisions(parent=svc.name))) == 1
    # A validate_only call is not a mutating call in the call log (runctl --dry-run relies on it).
    logged = [c for c in emulator.calls.entries() if c["method"].endswith("UpdateService")]
    assert logged and not any(c["mutating"] for c in logged)


@pytest.mark.parametrize(
    ("service_id", "words"),
    [
        ("a" * 50, "fewer than 50 characters"),
        ("Api", "lowercase"),
        ("1api", "begin with a letter"),
        ("api-", "not end with a hyphen"),
        ("", "required field not present"),
    ],
)
def test_service_id_rules(clients, service_id, words):
    with pytest.raises(exceptions.InvalidArgument) as err:
        clients.run_services().create_service(
            parent=PARENT, service=run_v2.Service(template=template()), service_id=service_id
        )
    assert "CreateServiceRequest.service_id" in err.value.message
    assert words in err.value.message


def test_a_49_character_name_is_fine(clients):
    assert create(clients, "a" * 49).name.endswith("/" + "a" * 49)


@pytest.mark.parametrize(
    ("service", "path"),
    [
        (run_v2.Service(), "service.template"),
        (run_v2.Service(template=run_v2.RevisionTemplate()), "service.template.containers"),
        (
            run_v2.Service(template=run_v2.RevisionTemplate(containers=[run_v2.Container()])),
            "service.template.containers[0].image",
        ),
        (
            run_v2.Service(
                template=run_v2.RevisionTemplate(
                    containers=[
                        run_v2.Container(
                            image=IMAGE,
                            ports=[
                                run_v2.ContainerPort(container_port=8080),
                                run_v2.ContainerPort(container_port=9090),
                            ],
                        )
                    ]
                )
            ),
            "service.template.containers[0].ports",
        ),
        (run_v2.Service(template=template(env={"PORT": "9000"})), "containers[0].env"),
        (run_v2.Service(template=template(revision="other-v1")), "service.template.revision"),
        (
            run_v2.Service(template=template(), labels={"run.googleapis.com/x": "y"}),
            "service.labels",
        ),
    ],
)
def test_required_fields_and_rules_are_enforced(clients, service, path):
    with pytest.raises(exceptions.InvalidArgument) as err:
        clients.run_services().create_service(parent=PARENT, service=service, service_id="api")
    assert "Violation in CreateServiceRequest." in err.value.message
    assert path in err.value.message


def test_reserved_env_names_are_named(clients):
    with pytest.raises(exceptions.InvalidArgument) as err:
        create(clients, env={"K_SERVICE": "x"})
    assert "reserved env names were provided: K_SERVICE" in err.value.message


def test_output_only_fields_in_the_request_are_ignored(clients):
    service = run_v2.Service(
        name="projects/elsewhere/locations/us-east1/services/other",  # composed from the request
        template=template(),
        uid="mine",
        generation=42,
        uri="https://example.com",
        latest_ready_revision="bogus",
        reconciling=True,
        creator="mallory@example.com",
        etag="whatever",
    )
    created = (
        clients.run_services()
        .create_service(parent=PARENT, service=service, service_id="api")
        .result()
    )
    assert created.name == f"{PARENT}/services/api"
    assert created.uid != "mine" and created.generation == 1
    assert "example.com" not in created.uri
    assert created.creator == "owner@example.com"
    assert short(created.latest_ready_revision).startswith("api-00001-")


def test_create_twice_is_already_exists(clients):
    create(clients)
    with pytest.raises(exceptions.AlreadyExists):
        create(clients)


def test_get_missing_is_not_found_in_cloud_runs_words(clients):
    with pytest.raises(exceptions.NotFound) as err:
        clients.run_services().get_service(name=f"{PARENT}/services/nope")
    assert (
        f"Resource 'nope' of kind 'SERVICE' in region '{REGION}' in project 'test-project' "
        "does not exist." in err.value.message
    )


def test_update_with_allow_missing_creates(clients):
    services = clients.run_services()
    service = run_v2.Service(name=f"{PARENT}/services/api", template=template())
    with pytest.raises(exceptions.NotFound):
        services.update_service(service=service)
    created = services.update_service(request={"service": service, "allow_missing": True}).result()
    assert created.generation == 1 and created.latest_ready_revision


def test_update_mask_changes_only_the_named_fields(clients):
    svc = create(clients, env={"A": "1"})
    change = run_v2.Service(name=svc.name, description="the api", template=template(env={"A": "2"}))
    updated = (
        clients.run_services()
        .update_service(
            request={
                "service": change,
                "update_mask": field_mask_pb2.FieldMask(paths=["description"]),
            }
        )
        .result()
    )
    assert updated.description == "the api"
    assert updated.template.containers[0].env[0].value == "1"
    assert updated.latest_created_revision == svc.latest_created_revision
    with pytest.raises(exceptions.InvalidArgument):
        clients.run_services().update_service(
            request={"service": change, "update_mask": field_mask_pb2.FieldMask(paths=["nope"])}
        )


def test_list_services_pages_and_spans_regions(clients):
    for name in ("a1", "a2", "a3"):
        create(clients, name)
    clients.run_services().create_service(
        parent="projects/test-project/locations/us-central1",
        service=run_v2.Service(template=template()),
        service_id="b1",
    ).result()
    services = clients.run_services()
    listed = services.list_services(request={"parent": PARENT, "page_size": 2})
    assert [short(s.name) for s in listed] == ["a1", "a2", "a3"]
    pages = services.list_services(request={"parent": PARENT, "page_size": 2}).pages
    assert [len(page.services) for page in pages] == [2, 1]
    everywhere = services.list_services(parent="projects/test-project/locations/-")
    assert sorted(short(s.name) for s in everywhere) == ["a1", "a2", "a3", "b1"]
    us = [s for s in everywhere if short(s.name) == "b1"][0]
    assert us.uri.endswith("-uc")


def test_delete_returns_the_service_and_removes_its_revisions(clients):
    svc = create(clients)
    deleted = clients.run_services().delete_service(name=svc.name).result()
    assert isinstance(deleted, run_v2.Service) and deleted.name == svc.name
    assert deleted.delete_time
    with pytest.raises(exceptions.NotFound):
        clients.run_services().get_service(name=svc.name)
    with pytest.raises(exceptions.NotFound):
        clients.run_revisions().get_revision(name=svc.latest_created_revision)
    again = create(clients)  # the name is free again; revisions restart at 00001
    assert short(again.latest_ready_revision).startswith("api-00001-")


def test_project_number_in_names_is_accepted(clients):
    from tests.emulator.run_support import NUMBER

    svc = create(clients)
    by_number = clients.run_services().get_service(
        name=f"projects/{NUMBER}/locations/{REGION}/services/api"
    )
    assert by_number.name == svc.name


def test_iam_policy_methods_and_permissions(clients, clients_as):
    svc = create(clients)
    services = clients.run_services()
    policy = services.get_iam_policy(request={"resource": svc.name})
    policy.bindings.add(role="roles/run.invoker", members=["user:alice@example.com"])
    stored = services.set_iam_policy(request={"resource": svc.name, "policy": policy})
    assert stored.bindings[0].members == ["user:alice@example.com"]
    alice = clients_as("user:alice@example.com").run_services()
    granted = alice.test_iam_permissions(
        request={"resource": svc.name, "permissions": ["run.routes.invoke", "run.services.get"]}
    )
    assert list(granted.permissions) == ["run.routes.invoke"]
    with pytest.raises(exceptions.PermissionDenied) as err:
        alice.get_service(name=svc.name)
    assert "run.services.get" in err.value.message
    with pytest.raises(exceptions.NotFound):
        services.get_iam_policy(request={"resource": f"{PARENT}/services/nope"})


def test_disabled_api_is_service_disabled(clients, emulator):
    emulator.configure(fresh_project=True)
    with pytest.raises(exceptions.PermissionDenied) as err:
        clients.run_services().get_service(name=f"{PARENT}/services/api")
    assert "Cloud Run Admin API has not been used" in err.value.message
