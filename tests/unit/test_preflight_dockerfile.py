"""Finding where a Dockerfile's container listens, against the port Cloud Run sends traffic to."""

from __future__ import annotations

import pytest

from runctl.preflight.dockerfile import findings, instructions, parse


def found(text: str, port: int = 8080, **kwargs: object) -> list[tuple[int, str]]:
    return [(f.line, f.message) for f in findings(parse(text), port, **kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FROM python\nEXPOSE 8000\n", [(2, "EXPOSE 8000")]),
        ("FROM python\nEXPOSE 8000/tcp 9000/udp\n", [(2, "EXPOSE 8000")]),
        ("FROM python\nEXPOSE 8080\nEXPOSE $PORT\n", []),
        (
            'FROM python\nCMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]\n',
            [(2, "binds port 8000 (--port 8000)")],
        ),
        (
            "FROM python\nCMD uvicorn app:app --host 0.0.0.0 --port=8000\n",
            [(2, "binds port 8000 (--port=8000)")],
        ),
        (
            "FROM python\nCMD exec gunicorn -b 0.0.0.0:8000 app:app\n",
            [(2, "binds port 8000 (-b 0.0.0.0:8000)")],
        ),
        (
            "FROM python\nCMD hypercorn --bind '[::]:9000' app:app\n",
            [(2, "binds port 9000 (--bind '[::]:9000)")],
        ),
        ("FROM python\nCMD PORT=8000 python app.py\n", [(2, "binds port 8000 (PORT=8000)")]),
        ("FROM python\nENV A=1 PORT=8000\n", [(2, "ENV PORT=8000 (Cloud Run sets PORT=8080)")]),
        ("FROM python\nENV PORT 8000\n", [(2, "ENV PORT=8000 (Cloud Run sets PORT=8080)")]),
    ],
    ids=[
        "expose",
        "expose-protocols",
        "expose-ok",
        "exec-form",
        "flag-equals",
        "gunicorn-bind",
        "hypercorn-ipv6",
        "port-assignment",
        "env-pair",
        "env-legacy",
    ],
)
def test_a_port_other_than_the_configured_one_is_found(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "FROM python\nCMD uvicorn app:app --host 0.0.0.0 --port $PORT\n",
        "FROM python\nCMD exec gunicorn --bind :$PORT app:app\n",
        "FROM python\nCMD exec gunicorn app:app\n",  # gunicorn binds 0.0.0.0:$PORT when set
        'FROM python\nCMD ["sh", "-c", "uvicorn app:app --host 0.0.0.0 --port ${PORT:-8000}"]\n',
        'FROM python\nCMD ["python", "app.py"]\n',
        "FROM python\nCMD fastapi run app/main.py --port $PORT\n",
        "# EXPOSE 8000 in a comment\nFROM python\n",
    ],
    ids=[
        "uvicorn-port-env",
        "gunicorn-bind-env",
        "gunicorn-default",
        "shell-default",
        "plain-python",
        "fastapi-run",
        "comment",
    ],
)
def test_listening_on_port_env_is_fine(text):
    assert found(text) == []


def test_only_the_final_stage_counts():
    text = (
        "FROM node:20 AS assets\nEXPOSE 3000\nCMD npm start\nFROM python:3.11\nCMD python app.py\n"
    )
    assert found(text) == []


def test_continuation_lines_and_comments_inside_them_are_joined():
    text = "FROM python\nCMD uvicorn app:app \\\n  # the port\n  --host 0.0.0.0 \\\n  --port 8000\n"
    assert found(text) == [(2, "binds port 8000 (--port 8000)")]


def test_escape_directive_changes_the_continuation_character():
    text = "# escape=`\nFROM python\nCMD uvicorn app:app `\n  --host 0.0.0.0 --port 8000\n"
    assert found(text) == [(3, "binds port 8000 (--port 8000)")]


def test_heredoc_bodies_are_not_instructions():
    text = "FROM python\nRUN <<EOF\nEXPOSE 9999\nEOF\nCMD python app.py\n"
    assert [k for _, k, _ in instructions(text)] == ["FROM", "RUN", "CMD"]
    assert found(text) == []


def test_server_defaults_are_found_when_not_overridden():
    assert found('FROM python\nCMD ["uvicorn", "app:app"]\n') == [
        (2, "uvicorn listens on 8000 without --port"),
        (2, "uvicorn listens on 127.0.0.1 without --host"),
    ]
    assert found("FROM python\nCMD flask run\n") == [
        (2, "flask run listens on 5000 without --port"),
        (2, "flask run listens on 127.0.0.1 without --host"),
    ]
    assert found("FROM python\nCMD fastapi run app/main.py\n") == [
        (2, "fastapi run listens on 8000 without --port"),
    ]


def test_server_environment_variables_count_as_overrides():
    text = "FROM python\nENV UVICORN_HOST=0.0.0.0\nCMD uvicorn app:app --port $PORT\n"
    assert found(text) == []
    text = "FROM python\nCMD uvicorn app:app --port $PORT\n"
    assert found(text, env=["UVICORN_HOST"]) == []


def test_loopback_binding_is_found():
    assert found("FROM python\nCMD uvicorn app:app --host 127.0.0.1 --port $PORT\n") == [
        (2, "listens on 127.0.0.1 (--host 127.0.0.1)")
    ]
    assert found("FROM python\nCMD gunicorn -b localhost:8080 app:app\n") == [
        (2, "listens on localhost (-b localhost:8080)")
    ]


def test_exec_form_does_not_expand_port():
    text = 'FROM python\nCMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "$PORT"]\n'
    assert found(text) == [(2, "exec-form command passes $PORT literally (no shell expands it)")]


def test_the_configured_port_is_what_counts():
    text = "FROM python\nEXPOSE 8000\nCMD uvicorn app:app --host 0.0.0.0 --port 8000\n"
    assert found(text, port=8000) == []
    assert [line for line, _ in found(text, port=8080)] == [2, 3]


def test_service_command_and_args_replace_entrypoint_and_cmd():
    text = (
        'FROM python\nENTRYPOINT ["uvicorn"]\n'
        'CMD ["app:app", "--host", "0.0.0.0", "--port", "8000"]\n'
    )
    assert found(text) == [(3, "binds port 8000 (--port 8000)")]
    args = ["app:app", "--host", "0.0.0.0", "--port", "8080"]
    assert found(text, args=args) == []
    command = ["gunicorn", "-b", "0.0.0.0:9000", "app:app"]
    assert found(text, command=command) == [(0, "binds port 9000 (-b 0.0.0.0:9000)")]
