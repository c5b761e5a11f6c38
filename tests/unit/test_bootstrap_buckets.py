"""Bucket policies between Cloud Storage's JSON form and protobuf, for one IAM code path."""

from __future__ import annotations

import copy

from google.api_core.iam import Policy

from runctl import iampolicy
from runctl.bootstrap.buckets import from_protobuf, to_protobuf

CONDITION = {
    "title": "weekdays",
    "description": "office hours",
    "expression": "request.time.getDayOfWeek() < 5",
}
_STORED = {
    "etag": "CAE=",
    "version": 3,
    "bindings": [
        {"role": "roles/storage.legacyBucketReader", "members": ["projectViewer:acme"]},
        {"role": "roles/storage.objectViewer", "members": ["user:a@x.com"], "condition": CONDITION},
    ],
}


def stored() -> Policy:
    """What GCS answers (a fresh copy: `from_api_repr` turns member lists into sets in place)."""
    return Policy.from_api_repr(copy.deepcopy(_STORED))


def test_conditions_convenience_values_and_the_etag_survive_the_round_trip():
    proto = to_protobuf(stored())
    assert proto.etag == b"\x08\x01" and proto.version == 3
    assert proto.bindings[1].condition.expression == CONDITION["expression"]
    back = from_protobuf(proto)
    assert back.to_api_repr() == stored().to_api_repr()


def test_a_grant_added_as_protobuf_reaches_the_json_policy_and_nothing_else_moves():
    proto = to_protobuf(stored())
    member = "serviceAccount:deployer@acme.iam.gserviceaccount.com"
    assert iampolicy.add_member(proto, "roles/storage.objectAdmin", member)
    assert not iampolicy.add_member(proto, "roles/storage.objectAdmin", member)
    sent = from_protobuf(proto).to_api_repr()
    assert sent["etag"] == "CAE=" and sent["version"] == 3
    assert {"role": "roles/storage.objectAdmin", "members": [member]} in sent["bindings"]
    assert [b for b in sent["bindings"] if b["role"] != "roles/storage.objectAdmin"] == (
        _STORED["bindings"]
    )


def test_an_empty_policy_is_sent_as_version_1():
    assert from_protobuf(to_protobuf(Policy())).to_api_repr() == {"version": 1}
