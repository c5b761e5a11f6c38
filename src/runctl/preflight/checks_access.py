"""Checks of who is calling and what they may reach: credentials, project, APIs."""

from __future__ import annotations

import functools
import json
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from runctl.preflight import calls
from runctl.preflight.model import Inputs, Result, failed, passed, warned
from runctl.preflight.runner import EnabledApis

ADC_FIX = (
    "gcloud auth application-default login (on a workstation); in CI, authenticate with Workload "
    "Identity Federation (e.g. google-github-actions/auth), which sets "
    "GOOGLE_APPLICATION_CREDENTIALS"
)
_SOURCES = (
    ("google.oauth2.credentials", "user login (gcloud auth application-default login)"),
    ("google.oauth2.service_account", "a service account key file"),
    ("google.auth.identity_pool", "Workload Identity Federation"),
    ("google.auth.aws", "Workload Identity Federation (AWS)"),
    ("google.auth.pluggable", "Workload Identity Federation (executable)"),
    ("google.auth.external_account", "Workload Identity Federation"),
    ("google.auth.compute_engine", "the metadata server"),
    ("google.auth.impersonated_credentials", "service account impersonation"),
)


@dataclass(frozen=True)
class Identity:
    who: str  # `user:...`, `serviceAccount:...`, or a description when unknown

    @property
    def member(self) -> str:
        return calls.member(self.who)


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    number: str


def identity_of(inputs: Inputs) -> Identity:
    return inputs.data("credentials", Identity) or Identity("the caller")


# -- credentials -------------------------------------------------------------------------------


def check_credentials(inputs: Inputs) -> Result:
    clients = inputs.clients()
    if clients.is_emulator:
        who = clients.identity()
        return passed(f"emulator at {clients.emulator}; calls run as {who}", data=Identity(who))
    from google.auth import exceptions as auth_errors

    try:
        creds = clients.credentials()
    except auth_errors.DefaultCredentialsError as err:
        return failed(f"no Application Default Credentials: {_first_line(err)}", ADC_FIX)
    try:
        _refresh(creds)
    except auth_errors.RefreshError as err:
        return failed(
            f"Google refused the credentials ({_source(creds)}): {_first_line(err)}",
            "log in again: gcloud auth application-default login (in CI, check the workload "
            "identity provider and the service account it impersonates)",
        )
    except auth_errors.TransportError as err:
        return failed(
            f"could not reach Google to obtain an access token: {_first_line(err)}",
            "check the network connection and proxy settings (HTTPS_PROXY)",
        )
    who = clients.identity()
    if who == "unknown":
        email = _token_email(creds)
        who = f"user:{email}" if email else "an unknown account"
    return passed(f"{who} via {_source(creds)}", data=Identity(who))


def _refresh(creds: Any) -> None:
    """Fetch a token now, with a deadline: proves the credentials work (and names the account
    of metadata-server credentials, which only know their email after a refresh)."""
    import google.auth.transport.requests

    request = google.auth.transport.requests.Request()
    creds.refresh(functools.partial(request, timeout=calls.CALL_TIMEOUT))


def _source(creds: Any) -> str:
    module = type(creds).__module__
    for prefix, label in _SOURCES:
        if module.startswith(prefix):
            if prefix == "google.oauth2.service_account":
                path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
                return f"{label} ({path})" if path else label
            return label
    return f"{module}.{type(creds).__name__}"


def _token_email(creds: Any) -> str | None:
    """The account of user credentials, which do not always carry it (best effort, bounded)."""
    token = getattr(creds, "token", None)
    if not token:
        return None
    query = urllib.parse.urlencode({"access_token": token})
    url = f"https://oauth2.googleapis.com/tokeninfo?{query}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            email = json.loads(response.read()).get("email")
    except (OSError, ValueError):
        return None
    return str(email) if email else None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# -- project -----------------------------------------------------------------------------------


def read_project(inputs: Inputs) -> Any:
    """GetProject, made once per run whichever check asks first."""
    project = inputs.config.project.id

    def read() -> Any:
        return (
            inputs.clients().projects().get_project(name=f"projects/{project}", **calls.options())
        )

    return inputs.memo.get("project", read)


def project_info(inputs: Inputs) -> ProjectInfo | None:
    """The project's id and number: from the `project` check if it finished, else read (once).

    Checks gated by `project` run alongside it; they need the number only to name the Compute
    Engine default service account of a service that sets none.
    """
    info = inputs.data("project", ProjectInfo)
    if info is not None:
        return info
    from google.api_core import exceptions

    try:
        found = read_project(inputs)
    except exceptions.GoogleAPICallError:
        return None  # the project check reports it; the gate then skips the asker
    return ProjectInfo(inputs.config.project.id, found.name.rsplit("/", 1)[-1])


def check_project(inputs: Inputs) -> Result:
    from google.api_core import exceptions
    from google.cloud import resourcemanager_v3

    config, who = inputs.config, identity_of(inputs)
    project = config.project.id
    try:
        found = read_project(inputs)
    except (exceptions.PermissionDenied, exceptions.NotFound):
        env = f" (--env {config.env_name})" if config.env_name else ""
        return failed(
            f"project {project} does not exist, or {who.who} may not see it "
            "(resourcemanager.projects.get)",
            f"check project.id in {config.path.name}{env}; if it is right, grant the caller "
            f"roles/browser: gcloud projects add-iam-policy-binding {project} "
            f"--member={who.member} --role=roles/browser",
        )
    except exceptions.GoogleAPICallError as err:
        return failed(*calls.problem(err, action="reading the project", resource=project))
    state = resourcemanager_v3.Project.State(found.state)
    if state is not resourcemanager_v3.Project.State.ACTIVE:
        return failed(
            f"project {project} is {state.name}",
            f"restore it (gcloud projects undelete {project}) or point project.id at another",
        )
    number = found.name.rsplit("/", 1)[-1]
    return passed(f"{project} (number {number})", data=ProjectInfo(project, number))


# -- apis --------------------------------------------------------------------------------------


def check_apis(inputs: Inputs) -> Result:
    """One ListServices call (filter state:ENABLED, one page of 200) answers for every API."""
    from google.api_core import exceptions

    config, who = inputs.config, identity_of(inputs)
    project = config.project.id
    required = config.bootstrap.all_apis()
    try:
        pager = (
            inputs.clients()
            .service_usage()
            .list_services(
                request={
                    "parent": f"projects/{project}",
                    "filter": "state:ENABLED",
                    "page_size": 200,
                },
                **calls.options(),
            )
        )
        enabled = frozenset(s.config.name or s.name.rsplit("/", 1)[-1] for s in pager)
    except exceptions.PermissionDenied as err:
        permission = calls.denied_permission(err) or "serviceusage.services.list"
        return warned(
            f"cannot list the enabled APIs: {who.who} lacks {permission}; each check below "
            "reports a disabled API it meets",
            f"grant roles/serviceusage.serviceUsageViewer: gcloud projects add-iam-policy-binding "
            f"{project} --member={who.member} --role=roles/serviceusage.serviceUsageViewer",
        )
    except exceptions.GoogleAPICallError as err:
        return failed(*calls.problem(err, action="listing the enabled APIs", resource=project))
    missing = [api for api in required if api not in enabled]
    data = EnabledApis(enabled)
    if missing:
        return failed(
            f"not enabled in {project}: {', '.join(missing)}", "runctl bootstrap", data=data
        )
    return passed(f"all {len(required)} required APIs are enabled", data=data)
