"""`google.cloud.resourcemanager.v3.Projects`: GetProject and the project's IAM policy.

Google answers PERMISSION_DENIED "...(or it may not exist)" for a project the caller cannot see,
never NOT_FOUND, so a typo in a project id looks like a missing grant; the emulator does the same.
"""

from __future__ import annotations

import hashlib
import re

from google.cloud.resourcemanager_v3.types import projects as rm_types
from google.protobuf import timestamp_pb2

from runctl.emulator.iam import IamMethods, declare_iam_methods
from runctl.emulator.module import Module
from runctl.emulator.projects import ProjectRecord
from runctl.emulator.rpc import Api, Call, invalid, permission_denied

# The consumer whose enablement Google checks is the caller's quota project, which the emulator
# cannot see; Resource Manager is enabled in every new project anyway, so no check here.
API = Api("google.cloud.resourcemanager.v3.Projects", api=None)

NAME_RE = re.compile(r"^projects/([^/]+)$")


class ResourceManager(IamMethods, Module):
    name = "resourcemanager"
    apis = (API,)

    def _project(self, name: str, permission: str) -> ProjectRecord:
        match = NAME_RE.match(name)
        if not match:
            raise invalid(f"Invalid project name {name!r}: expected projects/{{ID_OR_NUMBER}}.")
        record = self.emulator.projects.find(match.group(1))
        if record is None:
            raise permission_denied(
                f"Permission '{permission}' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/{name}' (or it may not exist).",
                metadata={"permission": permission, "resource": name},
            )
        return record

    def iam_resource(self, name: str) -> str:
        return f"projects/{self._project(name, 'resourcemanager.projects.get').project_id}"

    @API.method(
        "GetProject",
        rm_types.GetProjectRequest,
        rm_types.Project,
        mutating=False,
        resource=lambda r: r.name,
        permission="resourcemanager.projects.get",
    )
    def get_project(self, request: rm_types.GetProjectRequest, call: Call) -> rm_types.Project:
        record = self._project(request.name, "resourcemanager.projects.get")
        created = timestamp_pb2.Timestamp()
        created.FromNanoseconds(int(record.create_time * 1e9))
        etag = hashlib.sha256(f"{record.project_id}#{record.number}".encode()).hexdigest()[:16]
        return rm_types.Project(
            name=f"projects/{record.number}",
            project_id=record.project_id,
            state=rm_types.Project.State.ACTIVE,
            display_name=record.project_id,
            create_time=created,
            update_time=created,
            etag=f'W/"{etag}"',
        )


declare_iam_methods(API, "resourcemanager.projects")
