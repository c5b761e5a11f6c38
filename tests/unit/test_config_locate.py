"""The key locator: TOML key paths -> (line, column), which every config message relies on."""

from __future__ import annotations

import tomllib

from runctl.config.locate import key_positions

TEXT = '''\
# a comment with [brackets] and key = "value"
[project]
id = "acme" # trailing
regions = [
  "europe-west1",  # one
  "us-central1",
]
notes = """
[not.a.table]
fake = 1
"""
literal = \'\'\'x = 1\'\'\'

[services."my.svc"]
env = { A = "1", nested.b = 2 }
"quoted key" . sub = 3
[services."my.svc".secret_files]
"/secrets/tls.crt" = "tls"

[env.staging]
services.api.min_instances = 0

[[steps]]
name = "a"
[[steps]]
name = "b"
'''


def test_positions() -> None:
    tomllib.loads(TEXT)  # the locator only ever sees valid TOML
    found = key_positions(TEXT)
    assert found[("project",)] == (2, 2)
    assert found[("project", "id")] == (3, 1)
    assert found[("project", "regions", 1)] == (6, 3)
    assert found[("project", "literal")] == (12, 1)
    assert ("not",) not in found and ("project", "fake") not in found
    assert found[("services", "my.svc")] == (14, 11)
    assert found[("services", "my.svc", "env", "nested", "b")] == (15, 25)
    assert found[("services", "my.svc", "quoted key", "sub")] == (16, 16)
    assert found[("services", "my.svc", "secret_files", "/secrets/tls.crt")] == (18, 1)
    assert found[("env", "staging", "services", "api", "min_instances")] == (21, 14)
    assert found[("steps", 1, "name")] == (26, 1)


def test_never_raises_on_surprises() -> None:
    assert key_positions('a = "unterminated') == {("a",): (1, 1)}
