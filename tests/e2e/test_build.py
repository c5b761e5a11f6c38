"""`runctl build` (and `deploy --build`) through the CLI against the emulator, on real git repos."""

from __future__ import annotations

import io
import os
import re
import tarfile
from typing import Any

import pytest
from google.cloud.devtools import cloudbuild_v1 as cb

from runctl.errors import ExitCode

from .conftest import IMAGE, PROJECT_ID, REGION, calls, clear_calls, mutating

REPO = f"projects/{PROJECT_ID}/locations/{REGION}/repositories/apps"
GET_TAG = "google.devtools.artifactregistry.v1.ArtifactRegistry/GetTag"
UPLOAD = "storage.objects.insert"


def change(project: Any, name: str = "app.py", text: str = "print('v2')\n") -> str:
    (project.root / name).write_text(text)
    return str(project.commit(f"change {name}"))


def archive_members(clients: Any, url: str) -> dict[str, bytes]:
    bucket, _, name = url.removeprefix("gs://").partition("/")
    data = clients.storage().bucket(bucket).blob(name).download_as_bytes()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {
            m.name: (tar.extractfile(m).read() if m.isfile() else b"")  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


def get_build(clients: Any, build_id: str) -> cb.Build:
    return clients.cloud_build().get_build(project_id=PROJECT_ID, id=build_id)


def build_log(clients: Any, build: cb.Build) -> str:
    bucket = build.logs_bucket.removeprefix("gs://")
    blob = clients.storage().bucket(bucket).blob(f"log-{build.id}.txt")
    return str(blob.download_as_text())


def test_a_clean_tree_builds_once_and_then_is_skipped_with_one_read(
    cli, project, emulator, clients
):
    sha = change(project)
    result = cli("build", "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert doc["ok"] is True and doc["skipped"] is False
    assert doc["commit"] == sha and doc["tag"] == sha
    assert doc["image"] == f"{IMAGE}@{doc['digest']}" and doc["digest"].startswith("sha256:")
    assert doc["build_id"] and doc["log_url"].startswith("https://console.cloud.google.com/")
    assert doc["source"].startswith(f"gs://{PROJECT_ID}_cloudbuild/source/{sha}-")
    tag = clients.artifact_registry().get_tag(name=f"{REPO}/packages/hello/tags/{sha}")
    assert tag.version.endswith(doc["digest"])
    build = get_build(clients, doc["build_id"])
    assert build.status == cb.Build.Status.SUCCESS
    assert sha in build.tags and list(build.images) == [f"{IMAGE}:{sha}"]
    assert "latest" not in str(build.steps)
    assert f"built {doc['image']}" in result.err

    clear_calls(emulator)
    again = cli("build", "--json")
    assert again.code == ExitCode.OK, again.err
    assert again.json()["skipped"] is True and again.json()["digest"] == doc["digest"]
    assert [c["method"] for c in calls(emulator)] == [GET_TAG]
    assert "exists already" in again.err


def test_force_rebuilds_an_existing_image(cli, project, emulator):
    clear_calls(emulator)
    result = cli("build", "--force", "--json")
    assert result.code == ExitCode.OK, result.err
    assert result.json()["skipped"] is False
    methods = [c["method"] for c in calls(emulator)]
    assert GET_TAG not in methods
    assert "google.devtools.cloudbuild.v1.CloudBuild/CreateBuild" in methods


def test_a_dirty_tree_is_refused_with_the_files_and_nothing_is_called(cli, project, emulator):
    (project.root / "Dockerfile").write_text("FROM python:3.12-slim\n")
    (project.root / "notes.txt").write_text("untracked\n")
    (project.root / "src").mkdir()
    (project.root / "src" / "new.py").write_text("x = 1\n")
    clear_calls(emulator)
    result = cli("build")
    assert result.code == ExitCode.USAGE
    assert "3 uncommitted changes" in result.err
    for name in ("Dockerfile", "notes.txt", "src/new.py"):
        assert f"  {name}\n" in result.err
    assert "--allow-dirty" in result.err
    assert calls(emulator) == []


def test_allow_dirty_tags_by_archive_hash_and_labels_the_build(cli, project, emulator, clients):
    (project.root / "app.py").write_text("print('work in progress')\n")
    result = cli("build", "--allow-dirty", "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert re.fullmatch(f"{project.sha}-dirty-[0-9a-f]{{12}}", doc["tag"])
    assert doc["dirty"] is True and doc["commit"] == project.sha
    build = get_build(clients, doc["build_id"])
    assert list(build.tags) == ["runctl", project.sha, "dirty"]
    assert "runctl.dirty=true" in build.steps[-2].args
    files = archive_members(clients, doc["source"])
    assert files["app.py"] == b"print('work in progress')\n"  # the working tree, as it is

    clear_calls(emulator)  # the same dirty tree again: the same archive, so the same tag
    again = cli("build", "--allow-dirty", "--json")
    assert again.json()["skipped"] is True and again.json()["tag"] == doc["tag"]
    assert mutating(emulator) == []


def test_gcloudignore_decides_what_is_uploaded(cli, project, clients):
    (project.root / ".gitignore").write_text("*.pyc\n")
    (project.root / ".gcloudignore").write_text(
        ".gcloudignore\n#!include:.gitignore\ndocs/\n*.log\n!keep.log\n"
    )
    for name in ("docs/guide.md", "debug.log", "keep.log", "app.py", "tests/test_app.py"):
        (project.root / name).parent.mkdir(exist_ok=True)
        (project.root / name).write_text("x\n")
    project.commit("ignore rules")
    (project.root / "cache.pyc").write_text("git ignores me\n")
    result = cli("build", "--json")
    assert result.code == ExitCode.OK, result.err
    names = set(archive_members(clients, result.json()["source"]))
    assert {"Dockerfile", "app.py", "keep.log", "tests/test_app.py", ".gitignore"} <= names
    assert not names & {".gcloudignore", "docs", "docs/guide.md", "debug.log", "cache.pyc"}
    assert not any(n == ".git" or n.startswith(".git/") for n in names)


def test_without_gcloudignore_git_ignored_files_stay_out(cli, project, clients):
    (project.root / ".gitignore").write_text("secrets.env\n.venv/\n")
    project.commit("gitignore")
    (project.root / "secrets.env").write_text("TOKEN=x\n")
    (project.root / ".venv").mkdir()
    (project.root / ".venv" / "lib.py").write_text("x\n")
    result = cli("build", "--json")
    assert result.code == ExitCode.OK, result.err
    names = set(archive_members(clients, result.json()["source"]))
    assert "Dockerfile" in names and "runctl.toml" in names
    assert not names & {"secrets.env", ".venv", ".venv/lib.py"}
    assert not any(n.startswith(".git") and n != ".gitignore" for n in names)


def test_a_missing_dockerfile_is_refused_before_anything_is_uploaded(cli, project, emulator):
    (project.root / "Dockerfile").unlink()
    project.commit("no Dockerfile")
    clear_calls(emulator)
    result = cli("build")
    assert result.code == ExitCode.USAGE
    assert "there is no Dockerfile at" in result.err
    assert mutating(emulator) == []  # one GetTag (is it built?), no upload, no build


def test_a_dockerfile_the_build_cannot_use_fails_with_the_log_tail(cli, project, clients):
    (project.root / "Dockerfile").write_text("RUN echo no base image\n")
    project.commit("broken Dockerfile")
    result = cli("-q", "build", "--json")  # quiet: the log is not streamed, the tail is shown
    assert result.code == ExitCode.FAILED
    doc = result.json()
    assert doc["ok"] is False and doc["status"] == "FAILURE" and doc["digest"] is None
    assert "build step 1" in doc["detail"]
    assert "No build stage in current context" in "\n".join(doc["log_tail"])
    assert "lines of the build log:" in result.err
    assert "No build stage in current context" in result.err
    assert f"error: build {doc['build_id']}" in result.err and doc["log_url"] in result.err
    assert get_build(clients, doc["build_id"]).status == cb.Build.Status.FAILURE


def test_log_lines_stream_in_order_and_once(cli, project, emulator, clients):
    change(project)
    emulator.configure(operation_delay_ms=600)
    result = cli("build", "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    polls = [c for c in calls(emulator) if c["method"].endswith("/GetBuild")]
    assert len(polls) >= 3  # the build took several polls: the log was read as it grew
    log = build_log(clients, get_build(clients, doc["build_id"])).splitlines()
    assert log[-1] == "DONE" and len(log) > 30
    streamed = [line for line in result.err.splitlines() if line in set(log)]
    assert streamed == log  # every line, once, in order
    assert result.err.index(log[-1]) < result.err.index(f"built {doc['image']}")


def test_ctrl_c_cancels_the_build(cli, project, emulator, clients, monkeypatch):
    change(project)
    emulator.configure(operation_delay_ms=60_000)
    from runctl import waiting

    slept = []

    def interrupt_on_third(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(waiting, "sleep", interrupt_on_third)
    result = cli("build", "--json")
    assert result.code == ExitCode.INTERRUPTED
    doc = result.json()
    assert doc["ok"] is False and doc["status"] == "CANCELLED"
    assert "cancel" in result.err
    assert get_build(clients, doc["build_id"]).status == cb.Build.Status.CANCELLED
    assert "google.devtools.cloudbuild.v1.CloudBuild/CancelBuild" in mutating(emulator)


def test_detach_returns_after_starting_the_build(cli, project, emulator, clients):
    change(project)
    emulator.configure(operation_delay_ms=60_000)
    result = cli("build", "--detach", "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert doc["status"] == "QUEUED" and doc["digest"] is None and doc["build_id"]
    assert doc["log_url"] in result.err
    assert not [c for c in calls(emulator) if c["method"].endswith("/GetBuild")]
    assert get_build(clients, doc["build_id"]).status in (
        cb.Build.Status.QUEUED,
        cb.Build.Status.WORKING,
    )


def test_sha_builds_that_commits_tree_not_the_working_tree(cli, project, clients):
    old = change(project, text="print('old')\n")
    change(project, text="print('new')\n")
    (project.root / "app.py").write_text("print('uncommitted')\n")  # dirty, but not used
    result = cli("build", "--sha", old[:10], "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert doc["commit"] == old and doc["tag"] == old and doc["dirty"] is False
    assert archive_members(clients, doc["source"])["app.py"] == b"print('old')\n"


def test_sha_that_names_no_commit_is_a_usage_error(cli, project, emulator):
    clear_calls(emulator)
    result = cli("build", "--sha", "0123456789abcdef")
    assert result.code == ExitCode.USAGE
    assert "does not name a commit" in result.err
    assert calls(emulator) == []


def test_an_oversized_archive_is_refused_naming_the_largest_entries(cli, project, emulator):
    text = project.config.read_text() + "\n[build]\nmax_archive_mb = 1\n"
    project.config.write_text(text)
    (project.root / "assets").mkdir()
    (project.root / "assets" / "video.bin").write_bytes(os.urandom(1_500_000))
    project.commit("big asset")
    clear_calls(emulator)
    result = cli("build")
    assert result.code == ExitCode.USAGE
    assert "over the 1.0 MiB limit" in result.err
    assert "assets/video.bin" in result.err
    assert mutating(emulator) == []


def test_a_symlink_leaving_the_context_is_refused(cli, project):
    (project.root / "passwd").symlink_to("/etc/passwd")
    project.commit("link out")
    result = cli("build")
    assert result.code == ExitCode.USAGE
    assert "passwd -> /etc/passwd points outside the build context" in result.err


def test_deploy_build_builds_a_new_commit_then_deploys_it(cli, project, clients):
    sha = change(project)
    result = cli("deploy", "--build", "--json")
    assert result.code == ExitCode.OK, result.err
    (entry,) = result.json()["results"]
    tag = clients.artifact_registry().get_tag(name=f"{REPO}/packages/hello/tags/{sha}")
    digest = tag.version.rsplit("/", 1)[-1]
    assert entry["commit"] == sha and entry["image"] == f"{IMAGE}@{digest}"
    assert entry["verified"] is True
    assert "built " in result.err


def test_deploy_build_refuses_a_dirty_tree(cli, project, emulator):
    change(project)
    (project.root / "app.py").write_text("print('dirty')\n")
    clear_calls(emulator)
    result = cli("deploy", "--build")
    assert result.code == ExitCode.USAGE
    assert "uncommitted change" in result.err and "app.py" in result.err
    assert mutating(emulator) == []


@pytest.mark.parametrize("bad", ["FROM", "RUN true"])
def test_deploy_build_stops_when_the_build_fails(cli, project, emulator, bad):
    (project.root / "Dockerfile").write_text(bad + "\n")
    project.commit("broken")
    clear_calls(emulator)
    result = cli("deploy", "--build")
    assert result.code == ExitCode.FAILED
    assert "failed" in result.err and "nothing was deployed" in result.err
    assert not [m for m in mutating(emulator) if "run.v2" in m]


def test_changes_the_gcloudignore_excludes_do_not_make_the_tree_dirty(cli, project, clients):
    (project.root / ".gcloudignore").write_text(".gcloudignore\nREADME.md\nnotes/\n")
    (project.root / "README.md").write_text("# app\n")
    sha = project.commit("docs")
    (project.root / "README.md").write_text("# app, edited\n")
    (project.root / "notes").mkdir()
    (project.root / "notes" / "todo.txt").write_text("later\n")
    result = cli("build", "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert doc["tag"] == sha and doc["dirty"] is False


def test_a_subdirectory_context_with_its_own_dockerfile_path(cli, project, clients):
    project.write_config(
        project.config.read_text()
        + '\n[build]\ncontext = "services/api"\ndockerfile = "docker/Dockerfile"\n'
    )
    api = project.root / "services" / "api"
    (api / "docker").mkdir(parents=True)
    (api / "docker" / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY main.py /app/\n")
    (api / "main.py").write_text("print('api')\n")
    sha = project.commit("monorepo layout")
    result = cli("build", "--json")
    assert result.code == ExitCode.OK, result.err
    doc = result.json()
    assert set(archive_members(clients, doc["source"])) == {
        "docker",
        "docker/Dockerfile",
        "main.py",
    }
    build = get_build(clients, doc["build_id"])
    args = list(build.steps[-2].args)
    assert args[args.index("-f") + 1] == "docker/Dockerfile" and doc["tag"] == sha
    (project.root / "runctl.toml").write_text(project.config.read_text() + "\n# edited\n")
    assert cli("build").code == ExitCode.OK  # a change outside the context is not dirt
