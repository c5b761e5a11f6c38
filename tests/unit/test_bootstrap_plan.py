"""The pure bootstrap planner: what is missing, in which order, granted how narrowly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runctl.bootstrap.desired import (
    AR_WRITER,
    BUILDS_EDITOR,
    OBJECT_ADMIN,
    OBJECT_VIEWER,
    SA_USER,
    SECRET_ACCESSOR,
    SECRET_VIEWER,
    USAGE_CONSUMER,
    Desired,
    desired_from_config,
)
from runctl.bootstrap.plan import Live, Plan, plan
from runctl.bootstrap.steps import (
    CreateBucket,
    CreateSecret,
    EnableApis,
    Grant,
    GrantRoles,
)
from runctl.config.model import (
    DEFAULT_APIS,
    Bootstrap,
    Build,
    Config,
    Deploy,
    Healthz,
    Preflight,
    Project,
    Registry,
    SecretRef,
    Secrets,
    Service,
)
from runctl.errors import UsageError

P = "acme"
NUMBER = "123456789012"
DEPLOYER = f"deployer@{P}.iam.gserviceaccount.com"
API_SA = f"api-runtime@{P}.iam.gserviceaccount.com"
WORKER_SA = f"worker-runtime@{P}.iam.gserviceaccount.com"
CLOUD_BUILD = f"serviceAccount:{NUMBER}@cloudbuild.gserviceaccount.com"
REPO = f"projects/{P}/locations/europe-west1/repositories/apps"
SOURCE_BUCKET = f"projects/_/buckets/{P}_cloudbuild"
LOGS_BUCKET = "projects/_/buckets/acme-build-logs"


def svc(name: str = "api", **overrides: Any) -> Service:
    base = Service(
        name=name,
        regions=("europe-west1",),
        image="hello",
        service_account=API_SA,
        secrets=(("DATABASE_URL", SecretRef("db-url")),),
        secret_files=(("/secrets/tls.crt", SecretRef("tls-cert", 2)),),
    )
    return replace(base, **overrides)


def desired(
    *services: Service,
    replication: tuple[str, ...] = (),
    logs_bucket: str | None = None,
    **boot: Any,
) -> Desired:
    bootstrap = Bootstrap(**{"deployer": DEPLOYER, **boot})
    config = Config(
        path=Path("/work/runctl.toml"),
        env_name=None,
        project=Project(id=P, regions=("europe-west1",)),
        registry=Registry(location="europe-west1", repository="apps", image="hello"),
        build=Build(logs_bucket=logs_bucket),
        healthz=Healthz(),
        deploy=Deploy(),
        bootstrap=bootstrap,
        preflight=Preflight(),
        secrets=Secrets(replication=replication),
        services=services or (svc(),),
    )
    return desired_from_config(config)


def fresh(d: Desired) -> Live:
    """A new project: no API, nothing created, no policy readable but the project's."""
    names = _policy_names(d)
    return Live(
        project_number=NUMBER,
        enabled_apis=frozenset({"serviceusage.googleapis.com"}),
        repository_format=None,
        accounts={a.email: False for a in d.accounts if d.in_project(a.email)},
        secrets={s.secret: False for s in d.secrets},
        grants={n: (frozenset() if n == f"projects/{P}" else None) for n in names},
        policies={f"projects/{P}": object()},
        buckets={b.name: False for b in d.buckets},
    )


def ready(d: Desired) -> Live:
    """A project a previous bootstrap finished: everything in place."""
    wanted = {r.name: frozenset(g) for r, g in _wanted(d)}
    names = _policy_names(d)
    return Live(
        project_number=NUMBER,
        enabled_apis=frozenset(DEFAULT_APIS),
        repository_format="DOCKER",
        accounts={a.email: True for a in d.accounts if d.in_project(a.email)},
        secrets={s.secret: True for s in d.secrets},
        grants={n: wanted.get(n, frozenset()) for n in names},
        policies=dict.fromkeys(names, object()),
        buckets={b.name: True for b in d.buckets},
    )


def _policy_names(d: Desired) -> list[str]:
    names = [f"projects/{P}", REPO]
    names += [d.account_resource(a.email).name for a in d.runtime_accounts()]
    names += [d.secret_resource(s.secret).name for s in d.secrets]
    return names + [d.bucket_resource(b.name).name for b in d.buckets]


def _wanted(d: Desired) -> list[tuple[Any, list[Grant]]]:
    """Every grant bootstrap wants: what it plans for a fresh project."""
    steps = [n.step for n in plan(d, fresh(d)).nodes]
    return [(s.resource, list(s.grants)) for s in steps if isinstance(s, GrantRoles)]


def ids(p: Plan) -> list[str]:
    return [n.id for n in p.nodes]


def grants_of(p: Plan) -> dict[str, set[Grant]]:
    return {
        n.step.resource.name: set(n.step.grants) for n in p.nodes if isinstance(n.step, GrantRoles)
    }


def sa(email: str) -> str:
    return f"serviceAccount:{email}"


# -- whole plans ---------------------------------------------------------------------------------


def test_fresh_project_gets_everything_in_three_stages():
    d = desired()
    result = plan(d, fresh(d))
    assert [(n.id, n.stage, n.depends_on) for n in result.nodes] == [
        ("enable-apis", 1, ()),
        ("create-repository", 2, ("enable-apis",)),
        ("create-account:api-runtime", 2, ("enable-apis",)),
        ("create-account:deployer", 2, ("enable-apis",)),
        ("create-secret:db-url", 2, ("enable-apis",)),
        ("create-secret:tls-cert", 2, ("enable-apis",)),
        ("create-bucket:acme_cloudbuild", 2, ("enable-apis",)),
        ("grant:project:acme", 3, ("create-account:deployer",)),
        ("grant:repository:apps", 3, ("create-repository", "create-account:deployer")),
        ("grant:account:api-runtime", 3, ("create-account:api-runtime", "create-account:deployer")),
        (
            "grant:secret:db-url",
            3,
            ("create-secret:db-url", "create-account:api-runtime", "create-account:deployer"),
        ),
        (
            "grant:secret:tls-cert",
            3,
            ("create-secret:tls-cert", "create-account:api-runtime", "create-account:deployer"),
        ),
        (
            "grant:bucket:acme_cloudbuild",
            3,
            ("create-bucket:acme_cloudbuild", "create-account:deployer"),
        ),
    ]
    (enable,) = [n.step for n in result.nodes if isinstance(n.step, EnableApis)]
    assert enable.apis == DEFAULT_APIS
    # Enable (call + poll), create the repository (call + poll), then read-modify-write.
    assert result.critical_path() == 6
    assert any("runctl secrets set db-url" in note for note in result.notes)


def test_ready_project_needs_nothing():
    d = desired()
    result = plan(d, ready(d))
    assert result.empty and result.nodes == () and result.notes == ()
    assert result.critical_path() == 0


def test_grants_are_least_privilege():
    d = desired(svc(), svc("worker", service_account=WORKER_SA, secrets=(), secret_files=()))
    granted = grants_of(plan(d, fresh(d)))
    deployer = sa(DEPLOYER)
    assert granted == {
        f"projects/{P}": {
            Grant("roles/run.admin", deployer),
            Grant(BUILDS_EDITOR, deployer),
            Grant(USAGE_CONSUMER, deployer),
        },
        REPO: {Grant(AR_WRITER, deployer), Grant(AR_WRITER, CLOUD_BUILD)},
        f"projects/{P}/serviceAccounts/{API_SA}": {Grant(SA_USER, deployer)},
        f"projects/{P}/serviceAccounts/{WORKER_SA}": {Grant(SA_USER, deployer)},
        f"projects/{P}/secrets/db-url": {
            Grant(SECRET_ACCESSOR, sa(API_SA)),
            Grant(SECRET_VIEWER, deployer),
        },
        f"projects/{P}/secrets/tls-cert": {
            Grant(SECRET_ACCESSOR, sa(API_SA)),
            Grant(SECRET_VIEWER, deployer),
        },
        SOURCE_BUCKET: {Grant(OBJECT_ADMIN, deployer)},
    }
    # Act-as only on runtime accounts (never the project, never the deployer itself) and
    # secret access only on the secrets each account references.
    for name, grants in granted.items():
        roles = {g.role for g in grants}
        assert (SA_USER in roles) == ("/serviceAccounts/" in name)
        assert (SECRET_ACCESSOR in roles) == ("/secrets/" in name)
    assert f"projects/{P}/serviceAccounts/{DEPLOYER}" not in granted
    assert sa(WORKER_SA) not in {g.member for g in granted[f"projects/{P}/secrets/db-url"]}


# -- partial states ------------------------------------------------------------------------------


def _without_api(live: Live, api: str) -> Live:
    return replace(live, enabled_apis=live.enabled_apis - {api})


def _without_repository(live: Live) -> Live:
    return replace(live, repository_format=None, grants={**live.grants, REPO: None})


def _without_account(live: Live, email: str) -> Live:
    """As after deleting the account: IAM also drops the bindings that named it."""
    name = f"projects/{P}/serviceAccounts/{email}"
    grants = {
        res: None if have is None else frozenset(g for g in have if g.member != sa(email))
        for res, have in live.grants.items()
    }
    if name in grants:
        grants[name] = None
    return replace(live, accounts={**live.accounts, email: False}, grants=grants)


def _without_grant(live: Live, resource: str, grant: Grant) -> Live:
    have = live.grants[resource] or frozenset()
    return replace(live, grants={**live.grants, resource: have - {grant}})


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda lv: _without_api(lv, "iamcredentials.googleapis.com"), ["enable-apis"]),
        (_without_repository, ["create-repository", "grant:repository:apps"]),
        (
            lambda lv: _without_account(lv, API_SA),
            [
                "create-account:api-runtime",
                "grant:account:api-runtime",
                "grant:secret:db-url",
                "grant:secret:tls-cert",
            ],
        ),
        (
            lambda lv: _without_account(lv, DEPLOYER),
            [
                "create-account:deployer",
                "grant:project:acme",
                "grant:repository:apps",
                "grant:account:api-runtime",
                "grant:secret:db-url",
                "grant:secret:tls-cert",
                "grant:bucket:acme_cloudbuild",
            ],
        ),
        (
            lambda lv: _without_grant(lv, f"projects/{P}", Grant(BUILDS_EDITOR, sa(DEPLOYER))),
            ["grant:project:acme"],
        ),
        (
            lambda lv: _without_grant(
                lv, f"projects/{P}/secrets/db-url", Grant(SECRET_ACCESSOR, sa(API_SA))
            ),
            ["grant:secret:db-url"],
        ),
    ],
    ids=["one-api", "repository", "runtime-account", "deployer-account", "project-role", "secret"],
)
def test_partial_state_plans_only_what_is_missing(damage, expected):
    d = desired()
    result = plan(d, damage(ready(d)))
    assert ids(result) == expected


def test_missing_runtime_account_is_created_before_the_grants_that_name_it():
    d = desired()
    result = plan(d, _without_account(ready(d), API_SA))
    by_id = {n.id: n for n in result.nodes}
    assert by_id["create-account:api-runtime"].depends_on == ()  # the IAM API is on
    assert by_id["grant:secret:db-url"].depends_on == ("create-account:api-runtime",)
    assert by_id["grant:secret:db-url"].step.grants == (Grant(SECRET_ACCESSOR, sa(API_SA)),)


def test_only_the_missing_grant_of_a_resource_is_added():
    d = desired()
    resource = f"projects/{P}/secrets/db-url"
    result = plan(d, _without_grant(ready(d), resource, Grant(SECRET_VIEWER, sa(DEPLOYER))))
    assert grants_of(result) == {resource: {Grant(SECRET_VIEWER, sa(DEPLOYER))}}


def test_a_conditional_grant_is_not_the_grant_wanted():
    # `ready` lists unconditional grants only; the reader drops conditional ones, so a role
    # held under a condition shows as missing and is granted without one.
    d = desired()
    live = _without_grant(ready(d), f"projects/{P}", Grant("roles/run.admin", sa(DEPLOYER)))
    assert ids(plan(d, live)) == ["grant:project:acme"]


def test_apis_are_enabled_twenty_per_call():
    extra = tuple(f"api{i}.googleapis.com" for i in range(20))
    d = desired(apis=extra)
    result = plan(d, fresh(d))
    enables = [n.step for n in result.nodes if isinstance(n.step, EnableApis)]
    assert [len(e.apis) for e in enables] == [20, 7]
    assert [e.id for e in enables] == ["enable-apis", "enable-apis-2"]
    assert enables[0].apis[:7] == DEFAULT_APIS


def test_project_policy_read_is_reused_unless_enabling_apis_rewrites_it():
    d = desired()
    missing = Grant(BUILDS_EDITOR, sa(DEPLOYER))
    quiet = plan(d, _without_grant(ready(d), f"projects/{P}", missing))
    (only,) = quiet.nodes
    assert isinstance(only.step, GrantRoles) and only.step.reuse_read_policy
    assert quiet.critical_path() == 1
    lacking = _without_grant(ready(d), f"projects/{P}", missing)
    busy = plan(d, _without_api(lacking, "iam.googleapis.com"))
    (grant,) = [n.step for n in busy.nodes if isinstance(n.step, GrantRoles)]
    assert not grant.reuse_read_policy  # enabling an API grants its agents project roles


# -- options and notes ---------------------------------------------------------------------------


def test_run_developer_with_a_public_service_warns_about_public_access():
    d = desired(svc(allow_unauthenticated=True), deployer_role="roles/run.developer")
    result = plan(d, fresh(d))
    assert Grant("roles/run.developer", sa(DEPLOYER)) in grants_of(result)[f"projects/{P}"]
    assert any("cannot" in n or "not be able" in n for n in result.notes)
    assert any("allow_unauthenticated" in n for n in result.notes)
    private = desired(svc(), deployer_role="roles/run.developer")
    assert not any("allow_unauthenticated" in n for n in plan(private, ready(private)).notes)


def test_accounts_are_not_created_when_told_not_to():
    d = desired(create_service_accounts=False)
    result = plan(d, fresh(d))
    assert not any(i.startswith("create-account") for i in ids(result))
    # Nothing names an account that will not exist: IAM would refuse the binding.
    members = {g.member for grants in grants_of(result).values() for g in grants}
    assert members == {CLOUD_BUILD}
    assert sum("create_service_accounts = false" in n for n in result.notes) == 2


def test_another_projects_account_is_not_created_but_act_as_is_granted_if_readable():
    other = "runner@other-project.iam.gserviceaccount.com"
    d = desired(svc(service_account=other))
    live = ready(d)
    name = f"projects/-/serviceAccounts/{other}"
    result = plan(d, replace(live, grants={**live.grants, name: frozenset()}))
    assert ids(result) == ["grant:account:runner@other-project.iam.gserviceaccount.com"]
    assert any("not an account of project acme" in n for n in result.notes)
    unreadable = plan(d, replace(live, grants={**live.grants, name: None}))
    assert unreadable.empty
    assert any("grant roles/iam.serviceAccountUser" in n for n in unreadable.notes)


def test_without_a_deployer_only_runtime_grants_are_planned():
    d = desired(deployer=None)
    granted = grants_of(plan(d, fresh(d)))
    assert granted[REPO] == {Grant(AR_WRITER, CLOUD_BUILD)}
    assert f"projects/{P}" not in granted
    assert not any("/serviceAccounts/" in name for name in granted)
    assert any("no [bootstrap] deployer" in n for n in plan(d, fresh(d)).notes)


def test_secrets_are_created_with_the_configured_replication():
    d = desired(replication=("europe-west1", "europe-west4"))
    creates = [n.step for n in plan(d, fresh(d)).nodes if isinstance(n.step, CreateSecret)]
    assert {c.replication for c in creates} == {("europe-west1", "europe-west4")}


def test_a_repository_of_another_format_is_refused():
    d = desired()
    with pytest.raises(UsageError, match="not Docker"):
        plan(d, replace(ready(d), repository_format="MAVEN"))


# -- the build's buckets -------------------------------------------------------------------------


def test_the_logs_bucket_is_created_readable_by_the_deployer_and_writable_by_cloud_build():
    d = desired(logs_bucket="gs://acme-build-logs")
    result = plan(d, fresh(d))
    creates = [n.step for n in result.nodes if isinstance(n.step, CreateBucket)]
    assert [(c.bucket, c.location, c.purpose) for c in creates] == [
        ("acme_cloudbuild", "europe-west1", "Cloud Build source uploads"),
        ("acme-build-logs", "europe-west1", "build logs"),
    ]
    granted = grants_of(result)
    # Upload where the source goes, read where the logs go, and nothing on the project.
    assert granted[SOURCE_BUCKET] == {Grant(OBJECT_ADMIN, sa(DEPLOYER))}
    assert granted[LOGS_BUCKET] == {
        Grant(OBJECT_VIEWER, sa(DEPLOYER)),
        Grant(OBJECT_ADMIN, CLOUD_BUILD),
    }
    assert not {g.role for g in granted[f"projects/{P}"]} & {OBJECT_ADMIN, OBJECT_VIEWER}
    by_id = {n.id: n for n in result.nodes}
    assert by_id["grant:bucket:acme-build-logs"].depends_on == (
        "create-bucket:acme-build-logs",
        "create-account:deployer",
    )


def test_a_logs_bucket_that_is_the_source_bucket_is_one_bucket():
    d = desired(logs_bucket=f"gs://{P}_cloudbuild")
    granted = grants_of(plan(d, fresh(d)))
    assert granted[SOURCE_BUCKET] == {
        Grant(OBJECT_ADMIN, sa(DEPLOYER)),
        Grant(OBJECT_ADMIN, CLOUD_BUILD),
    }
    assert [b.purpose for b in d.buckets] == ["Cloud Build source uploads and build logs"]


def test_an_existing_bucket_only_gets_its_missing_grants_once_storage_is_on():
    d = desired(logs_bucket="gs://acme-build-logs")
    live = _without_grant(ready(d), LOGS_BUCKET, Grant(OBJECT_VIEWER, sa(DEPLOYER)))
    assert ids(plan(d, live)) == ["grant:bucket:acme-build-logs"]
    off = _without_api(live, "storage.googleapis.com")
    (grant,) = [n for n in plan(d, off).nodes if isinstance(n.step, GrantRoles)]
    assert grant.depends_on == ("enable-apis",)


def test_a_bucket_name_held_elsewhere_is_neither_created_nor_granted_on():
    d = desired()
    live = replace(fresh(d), buckets={f"{P}_cloudbuild": None})
    result = plan(d, live)
    assert not [i for i in ids(result) if "bucket" in i]
    assert any("gs://acme_cloudbuild" in n and "another project" in n for n in result.notes)


def test_without_a_deployer_the_buckets_exist_and_only_cloud_build_is_granted():
    d = desired(deployer=None, logs_bucket="gs://acme-build-logs")
    result = plan(d, fresh(d))
    assert {"create-bucket:acme_cloudbuild", "create-bucket:acme-build-logs"} <= set(ids(result))
    granted = grants_of(result)
    assert SOURCE_BUCKET not in granted
    assert granted[LOGS_BUCKET] == {Grant(OBJECT_ADMIN, CLOUD_BUILD)}
