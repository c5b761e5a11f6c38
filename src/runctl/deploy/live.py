"""Reading live state for a deploy: services and their invoker policies, concurrently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from google.api_core import exceptions
from google.cloud import run_v2
from google.iam.v1 import policy_pb2

from runctl import parallel
from runctl.apierrors import translate
from runctl.deploy.plan import Target
from runctl.gcp import Clients
from runctl.selection import service_resource


@dataclass
class LiveTarget:
    target: Target
    name: str
    service: run_v2.Service | None
    policy: policy_pb2.Policy | None


def read(
    clients: Clients, project: str, targets: Sequence[Target], *, limit: int
) -> list[LiveTarget]:
    """GetService and GetIamPolicy for every target, all at once. A missing service is None."""
    services = clients.run_services()

    def name_of(target: Target) -> str:
        return service_resource(project, target)

    def get_service(target: Target) -> run_v2.Service | None:
        try:
            return services.get_service(name=name_of(target))
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as err:
            raise translate(err, action=f"reading {target}", resource=name_of(target)) from err

    def get_policy(target: Target) -> policy_pb2.Policy | None:
        try:
            return services.get_iam_policy(request={"resource": name_of(target)})
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as err:
            raise translate(err, action=f"reading access of {target}") from err

    calls = [lambda t=t: get_service(t) for t in targets] + [
        lambda t=t: get_policy(t) for t in targets
    ]
    results = parallel.run_all(*calls, limit=max(limit, 1) * 2)
    count = len(targets)
    return [
        LiveTarget(t, name_of(t), results[i], results[count + i])  # type: ignore[arg-type]
        for i, t in enumerate(targets)
    ]
