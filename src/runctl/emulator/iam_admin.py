"""`google.iam.admin.v1.IAM`: service accounts and the IAM policy on each of them.

A service account is also a resource: `roles/iam.serviceAccountUser` granted on it (not on the
project) lets a deployer act as that one account. Its policy is stored under one canonical name,
`projects/<PROJECT_ID>/serviceAccounts/<EMAIL>`, however a call addresses it (`projects/-/`,
project number, email or unique id), so grants made one way are seen the other ways.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from google.cloud.iam_admin_v1.types import iam as iam_types
from google.protobuf import empty_pb2

from runctl.emulator.iam import IamMethods, declare_iam_methods
from runctl.emulator.module import Module
from runctl.emulator.rpc import (
    Api,
    Call,
    RpcError,
    already_exists,
    failed_precondition,
    invalid,
    not_found,
)

if TYPE_CHECKING:
    from runctl.emulator.core import Emulator

API = Api("google.iam.admin.v1.IAM", api="iam.googleapis.com")

ACCOUNT_ID_RE = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")
NAME_RE = re.compile(r"^projects/([^/]+)/serviceAccounts/([^/]+)$")
# Also matches sub-resources (keys), whose policies inherit from the account.
RESOURCE_RE = re.compile(r"^projects/([^/]+)/serviceAccounts/([^/]+)(?:/.*)?$")
USER_MANAGED_RE = re.compile(r"^[^@]+@([a-z][-a-z0-9]*[a-z0-9])\.iam\.gserviceaccount\.com$")
COMPUTE_DEFAULT_RE = re.compile(r"^(\d+)-compute@developer\.gserviceaccount\.com$")
# Service agents and other accounts Google creates and owns; they always exist.
GOOGLE_MANAGED_RES = (
    COMPUTE_DEFAULT_RE,
    re.compile(r"^(\d+)@cloudbuild\.gserviceaccount\.com$"),
    re.compile(r"^service-(\d+)@gcp-sa-[-a-z0-9]+\.iam\.gserviceaccount\.com$"),
    re.compile(r"^[^@]+@gcp-sa-[-a-z0-9]+\.iam\.gserviceaccount\.com$"),
    re.compile(r"^service-(\d+)@serverless-robot-prod\.iam\.gserviceaccount\.com$"),
    re.compile(r"^[^@]+@serverless-robot-prod\.iam\.gserviceaccount\.com$"),
)

LIST_DEFAULT_PAGE = 20
LIST_MAX_PAGE = 100
DISPLAY_NAME_MAX_BYTES = 100
DESCRIPTION_MAX_BYTES = 256


def unique_id_for(seed: str) -> str:
    """A 21-digit numeric id, as Google gives service accounts."""
    digest = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:12], "big")
    return "1" + str(digest % 10**20).zfill(20)


def is_google_managed(email: str) -> bool:
    return any(pattern.match(email) for pattern in GOOGLE_MANAGED_RES)


@dataclass
class Account:
    email: str
    project_id: str
    unique_id: str
    display_name: str = ""
    description: str = ""
    disabled: bool = False

    @property
    def name(self) -> str:
        return f"projects/{self.project_id}/serviceAccounts/{self.email}"

    def to_pb(self) -> iam_types.ServiceAccount:
        return iam_types.ServiceAccount(
            name=self.name,
            project_id=self.project_id,
            unique_id=self.unique_id,
            email=self.email,
            display_name=self.display_name,
            description=self.description,
            oauth2_client_id=self.unique_id,
            disabled=self.disabled,
        )


def _unknown_account() -> RpcError:
    return not_found("Unknown service account")


class IamAdmin(IamMethods, Module):
    name = "iam_admin"
    apis = (API,)

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self._accounts: dict[str, Account] = {}  # by email
        self._serial = 0  # makes a re-created account's unique id differ, as on Google
        emulator.iam.member_exists = self._member_exists
        emulator.iam.parent_hooks.append(self._parents)

    # -- cross-module interface ----------------------------------------------------------------

    def service_account_exists(self, email: str) -> bool:
        if is_google_managed(email):
            return True
        if USER_MANAGED_RE.match(email):
            return email in self._accounts
        return True  # an account in a domain the emulator does not manage: assume it exists

    def service_account_resource(self, email: str) -> str:
        """The resource on which `iam.serviceAccounts.actAs` is checked for `email`."""
        project = self._project_of_email(email)
        return f"projects/{project or '-'}/serviceAccounts/{email}"

    # -- lookup --------------------------------------------------------------------------------

    def _project_of_email(self, email: str) -> str | None:
        account = self._accounts.get(email)
        if account is not None:
            return account.project_id
        for pattern in GOOGLE_MANAGED_RES:
            match = pattern.match(email)
            if match and match.groups():
                record = self.emulator.projects.find(match.group(1))
                return record.project_id if record else None
        match = USER_MANAGED_RE.match(email)
        if match and not is_google_managed(email):
            return match.group(1)
        return None

    def _builtin(self, email: str) -> Account | None:
        """The Compute Engine default account, which every project has without creating it."""
        match = COMPUTE_DEFAULT_RE.match(email)
        if not match:
            return None
        record = self.emulator.projects.find(match.group(1))
        if record is None:
            return None
        return Account(
            email=email,
            project_id=record.project_id,
            unique_id=unique_id_for(email),
            display_name="Compute Engine default service account",
        )

    def _find(self, key: str) -> Account | None:
        """An account by email or unique id."""
        if "@" in key:
            return self._accounts.get(key) or self._builtin(key)
        for account in self._accounts.values():
            if account.unique_id == key:
                return account
        return None

    def _resolve(self, name: str) -> Account:
        """The account `projects/P/serviceAccounts/EMAIL_OR_ID` names (P may be `-`)."""
        match = NAME_RE.match(name)
        if not match:
            raise invalid(
                f"Invalid service account name {name!r}: expected "
                "projects/{PROJECT}/serviceAccounts/{EMAIL_OR_UNIQUE_ID}.",
                "name",
            )
        segment, key = match.groups()
        account = self._find(key)
        if account is None:
            raise _unknown_account()
        if segment == "-":
            # The wrapper could not tell which project's API to check before the body ran.
            self.emulator.projects.require_api(account.name, API.api or "")
            return account
        record = self.emulator.projects.find(segment)
        if record is None or record.project_id != account.project_id:
            raise _unknown_account()
        return account

    def _parents(self, resource: str) -> list[str]:
        """Permission inheritance for any way of naming an account: its canonical name, project."""
        match = RESOURCE_RE.match(resource)
        if not match:
            return []
        account = self._find(match.group(2))
        if account is None:
            return []
        return [account.name, f"projects/{account.project_id}"]

    def _member_exists(self, member: str) -> bool:
        kind, _, email = member.partition(":")
        if kind != "serviceAccount":
            return True
        return self.service_account_exists(email)

    def iam_resource(self, name: str) -> str:
        return self._resolve(name).name

    # -- methods -------------------------------------------------------------------------------

    @API.method(
        "CreateServiceAccount",
        iam_types.CreateServiceAccountRequest,
        iam_types.ServiceAccount,
        mutating=True,
        resource=lambda r: r.name,
        permission="iam.serviceAccounts.create",
    )
    def create_service_account(
        self, request: iam_types.CreateServiceAccountRequest, call: Call
    ) -> iam_types.ServiceAccount:
        match = re.match(r"^projects/([^/]+)$", request.name)
        if not match or match.group(1) == "-":
            raise invalid(f"Invalid project name {request.name!r}.", "name")
        record = self.emulator.projects.get(match.group(1))
        account_id = request.account_id
        if not ACCOUNT_ID_RE.match(account_id):
            raise invalid(
                f"Invalid account ID {account_id!r}: it must be 6-30 characters, start with a "
                "lowercase letter and contain only lowercase letters, digits and hyphens, "
                "ending with a letter or digit.",
                "account_id",
            )
        requested = request.service_account
        if len(requested.display_name.encode()) > DISPLAY_NAME_MAX_BYTES:
            raise invalid("The display name is longer than 100 bytes.", "display_name")
        if len(requested.description.encode()) > DESCRIPTION_MAX_BYTES:
            raise invalid("The description is longer than 256 bytes.", "description")
        email = f"{account_id}@{record.project_id}.iam.gserviceaccount.com"
        if email in self._accounts:
            raise already_exists(
                f"Service account {account_id} already exists within project "
                f"projects/{record.project_id}."
            )
        self._serial += 1
        account = Account(
            email=email,
            project_id=record.project_id,
            unique_id=unique_id_for(f"{email}#{self._serial}"),
            display_name=requested.display_name,
            description=requested.description,
        )
        self._accounts[email] = account
        return account.to_pb()

    @API.method(
        "GetServiceAccount",
        iam_types.GetServiceAccountRequest,
        iam_types.ServiceAccount,
        mutating=False,
        resource=lambda r: r.name,
        permission="iam.serviceAccounts.get",
    )
    def get_service_account(
        self, request: iam_types.GetServiceAccountRequest, call: Call
    ) -> iam_types.ServiceAccount:
        return self._resolve(request.name).to_pb()

    @API.method(
        "ListServiceAccounts",
        iam_types.ListServiceAccountsRequest,
        iam_types.ListServiceAccountsResponse,
        mutating=False,
        resource=lambda r: r.name,
        permission="iam.serviceAccounts.list",
    )
    def list_service_accounts(
        self, request: iam_types.ListServiceAccountsRequest, call: Call
    ) -> iam_types.ListServiceAccountsResponse:
        match = re.match(r"^projects/([^/]+)$", request.name)
        if not match or match.group(1) == "-":
            raise invalid(f"Invalid project name {request.name!r}.", "name")
        record = self.emulator.projects.get(match.group(1))
        accounts = [a for a in self._accounts.values() if a.project_id == record.project_id]
        builtin = self._builtin(f"{record.number}-compute@developer.gserviceaccount.com")
        if builtin is not None:
            accounts.append(builtin)
        accounts.sort(key=lambda a: a.email)
        if request.page_size < 0:
            raise invalid("page_size must not be negative.", "page_size")
        size = min(request.page_size or LIST_DEFAULT_PAGE, LIST_MAX_PAGE)
        start = _page_start(request.page_token)
        page = accounts[start : start + size]
        token = str(start + size) if start + size < len(accounts) else ""
        return iam_types.ListServiceAccountsResponse(
            accounts=[a.to_pb() for a in page], next_page_token=token
        )

    @API.method(
        "DeleteServiceAccount",
        iam_types.DeleteServiceAccountRequest,
        empty_pb2.Empty,
        mutating=True,
        resource=lambda r: r.name,
        permission="iam.serviceAccounts.delete",
    )
    def delete_service_account(
        self, request: iam_types.DeleteServiceAccountRequest, call: Call
    ) -> empty_pb2.Empty:
        account = self._resolve(request.name)
        if account.email not in self._accounts:
            raise failed_precondition(
                f"The emulator does not delete the built-in account {account.email}."
            )
        del self._accounts[account.email]
        self._forget_grants(account)
        return empty_pb2.Empty()

    def _forget_grants(self, account: Account) -> None:
        """Drop the account's own policy and mark it deleted where it was granted, as IAM does.

        Google rewrites bindings of a deleted account to `deleted:serviceAccount:EMAIL?uid=ID`, so
        a read-modify-write of a policy that still names it does not fail validation.
        """
        iam = self.emulator.iam
        iam.drop(account.name)
        resources = iam.resources()
        member = f"serviceAccount:{account.email}"
        tombstone = f"deleted:serviceAccount:{account.email}?uid={account.unique_id}"
        for resource in resources:
            policy = iam.get_policy(resource)
            if not any(member in b.members for b in policy.bindings):
                continue
            for binding in policy.bindings:
                members = [tombstone if m == member else m for m in binding.members]
                del binding.members[:]
                binding.members.extend(members)
            policy.ClearField("etag")
            iam.set_policy(resource, policy)

    # -- module state --------------------------------------------------------------------------

    def reset(self) -> None:
        self._accounts.clear()
        self._serial = 0

    def dump(self) -> dict[str, Any]:
        return {
            "serial": self._serial,
            "accounts": {email: asdict(a) for email, a in self._accounts.items()},
        }

    def load(self, data: dict[str, Any]) -> None:
        self._serial = int(data.get("serial", 0))
        self._accounts = {
            email: Account(**raw) for email, raw in (data.get("accounts") or {}).items()
        }


def _page_start(token: str) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise invalid("Invalid page token.", "page_token")
    return int(token)


declare_iam_methods(API, "iam.serviceAccounts")
