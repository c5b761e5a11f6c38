"""The rotation planner (pure): each consumer's revision change, and which old versions may go."""

from __future__ import annotations

from google.cloud import run_v2

from runctl.deploy.desired import ANN_COMMIT, ANN_DEPLOYER
from runctl.deploy.plan import ResumeCandidate, Target, UpdateService
from runctl.deploy.traffic import REVISION
from runctl.rotation.consumers import LiveService, SecretId, pins_of
from runctl.rotation.plan import (
    AddVersion,
    decide_disable,
    plan_consumer,
    plan_rotation,
    repin,
    template_from_revision,
)
from runctl.rotation.versions import SecretState, VersionInfo

from .deploy_fixtures import COMMIT, desired, service

TARGET = Target("api", "europe-west1")
DB = SecretId("acme", "db-url", "123456789012")
PREFIX = "projects/acme/locations/europe-west1/services/api/revisions/"


def live(revision="api-0123456-old", *, traffic=None, pins=None, svc=None):
    """A deployed service whose template (revision `revision`) pins db-url to `pins` or 3."""
    live_svc = desired(svc, revision=revision, pins={"db-url": pins or 3})
    live_svc.latest_ready_revision = PREFIX + revision
    live_svc.latest_created_revision = PREFIX + revision
    live_svc.etag = "etag-1"
    live_svc.traffic = traffic or [
        run_v2.TrafficTarget(type_=REVISION, revision=revision, percent=100)
    ]
    item = LiveService(TARGET, live_svc)
    item.pins[revision] = pins_of(live_svc.template)
    return item


def named(service, commit):
    return f"{service}-{(commit or 'image')[:7]}-zzzzz"


def plan(item, version=4):
    return plan_consumer(
        item, DB, version, deployer="user:ops@example.com", tag_prefix="rc", name_revision=named
    )


def state(*versions):
    infos = tuple(VersionInfo(n, s, None) for n, s in versions)
    return SecretState("db-url", "projects/123456789012/secrets/db-url", '"e"', {}, infos)


def test_a_consumer_gets_a_revision_with_only_the_secret_repinned():
    result = plan(live())
    assert result.kind == "roll" and result.previous_version == 3
    assert [c.render() for c in result.changes] == ["~ secret DATABASE_URL: db-url:3 → db-url:4"]
    step = result.step
    assert isinstance(step, UpdateService)
    assert step.revision == "api-0123456-zzzzz" and step.tag == "rc-zzzzz"
    assert step.etag == "etag-1" and [r.revision for r in step.previous] == ["api-0123456-old"]
    template = step.service.template
    assert template.annotations[ANN_DEPLOYER] == "user:ops@example.com"
    assert template.annotations[ANN_COMMIT] == COMMIT
    files = [i.version for v in template.volumes for i in v.secret.items]
    assert files == ["2"]  # tls-cert is another secret: untouched


def test_not_deployed_is_skipped():
    result = plan(LiveService(TARGET, None))
    assert result.kind == "skipped" and result.step is None and "not deployed" in result.note


def test_already_serving_the_new_version_needs_no_revision():
    result = plan(live(pins=4))
    assert result.kind == "current" and result.step is None


def test_a_live_service_without_the_reference_is_skipped():
    result = plan(live(svc=service(secrets=())))
    assert result.kind == "skipped" and "does not reference db-url" in result.note


def test_the_serving_revision_not_the_failed_template_is_the_base():
    item = live(
        "api-0123456-bad",
        svc=service(memory="2Gi"),
        traffic=[run_v2.TrafficTarget(type_=REVISION, revision="api-0123456-good", percent=100)],
    )
    good = desired(revision="api-0123456-good")
    revision = run_v2.Revision(name=PREFIX + "api-0123456-good")
    for name in (
        "containers",
        "volumes",
        "scaling",
        "service_account",
        "timeout",
        "labels",
        "annotations",
    ):
        setattr(revision, name, getattr(good.template, name))
    revision.annotations["run.googleapis.com/operation-id"] = "x"
    item.revisions["api-0123456-good"] = revision
    item.pins["api-0123456-good"] = pins_of(revision)
    result = plan(item)
    assert result.kind == "roll" and "built from the serving revision" in result.note
    template = result.step.service.template
    assert template.containers[0].resources.limits["memory"] == "512Mi"
    assert "run.googleapis.com/operation-id" not in template.annotations
    assert [c.field for c in result.changes] == ["secret DATABASE_URL"]


def test_a_verified_pending_candidate_of_an_earlier_run_is_resumed():
    item = live(
        "api-0123456-new",
        pins=4,
        traffic=[
            run_v2.TrafficTarget(type_=REVISION, revision="api-0123456-old", percent=100),
            run_v2.TrafficTarget(type_=REVISION, revision="api-0123456-new", tag="rc-new"),
        ],
    )
    item.pins["api-0123456-old"] = pins_of(desired(revision="x").template)  # pinned to 3
    result = plan(item)
    assert result.kind == "resume" and isinstance(result.step, ResumeCandidate)
    assert result.step.tag == "rc-new"


def test_repin_matches_every_name_of_the_secret_in_its_own_project_only():
    template = run_v2.RevisionTemplate(
        containers=[
            run_v2.Container(
                env=[
                    run_v2.EnvVar(
                        name=name,
                        value_source=run_v2.EnvVarSource(
                            secret_key_ref=run_v2.SecretKeySelector(secret=secret, version="latest")
                        ),
                    )
                    for name, secret in [
                        ("A", "db-url"),
                        ("B", "projects/acme/secrets/db-url"),
                        ("C", "projects/123456789012/secrets/db-url"),
                        ("D", "projects/other/secrets/db-url"),
                    ]
                ]
            )
        ]
    )
    assert repin(template, DB, 7) == 3
    got = {e.name: e.value_source.secret_key_ref.version for e in template.containers[0].env}
    assert got == {"A": "7", "B": "7", "C": "7", "D": "latest"}


def test_repin_pins_a_whole_secret_volume():
    template = run_v2.RevisionTemplate(
        volumes=[run_v2.Volume(name="s", secret=run_v2.SecretVolumeSource(secret="db-url"))]
    )
    assert repin(template, DB, 5) == 1
    (item,) = template.volumes[0].secret.items
    assert (item.path, item.version) == ("db-url", "5")


def test_template_from_revision_drops_system_keys():
    revision = run_v2.Revision(
        labels={"team": "web", "cloud.googleapis.com/location": "x"},
        annotations={"runctl.dev/commit": "abc", "serving.knative.dev/creator": "y"},
        service_account="sa@acme.iam.gserviceaccount.com",
    )
    template = template_from_revision(revision, run_v2.RevisionTemplate())
    assert dict(template.labels) == {"team": "web"}
    assert dict(template.annotations) == {"runctl.dev/commit": "abc"}
    assert template.service_account == "sa@acme.iam.gserviceaccount.com"


def test_old_versions_are_disabled_only_when_nothing_else_serves_them():
    other = live("api-0123456-other", pins=3)
    other.target = Target("worker", "europe-west1")
    enabled = state((4, "ENABLED"), (3, "ENABLED"), (2, "ENABLED"))
    disable, keep = decide_disable(DB, enabled, {3, 2}, 4, [other])
    assert disable is not None and disable.numbers == (2,)
    assert [k.number for k in keep] == [3] and "worker (europe-west1)" in keep[0].reasons[0]
    # Already disabled, destroyed or the new one: not candidates at all.
    gone = state((4, "ENABLED"), (3, "DISABLED"), (2, "DESTROYED"))
    assert decide_disable(DB, gone, {2, 3, 4}, 4, []) == (None, ())


def test_the_plan_names_the_new_version_and_what_stays():
    add = AddVersion("db-url", 4, "32 bytes")
    result = plan_rotation(
        DB,
        state((3, "ENABLED")),
        add,
        [live()],
        [],
        deployer="d",
        tag_prefix="rc",
        disable_old=True,
        name_revision=named,
    )
    assert result.add.describe() == ("add version 4 to db-url (32 bytes; the value is never shown)")
    assert result.disable is not None and result.disable.numbers == (3,)
    assert result.previous_numbers() == {3}
