"""The real `ringfence` command, run as a subprocess against a real `ringfence serve` process.

One server (SQLite in a temporary directory) serves the whole module; every test
works on its own config names, so the tests do not depend on each other's order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ringfence.cli.exits import CliError
from ringfence.cli.formats import to_toml
from ringfence.testing.ports import free_port
from ringfence.testing.server import ServerProcess

RINGFENCE = Path(sys.executable).with_name("ringfence")
ADMIN = "rf_cli_test_admin_secret"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("cli-server")
    with ServerProcess(f"sqlite:///{root / 'ringfence.db'}", admin_token=ADMIN) as process:
        yield process


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The current directory of the CLI runs: config files are named by paths relative to it."""
    (tmp_path / "home").mkdir()
    return tmp_path


def ringfence(*args: str, cwd: Path, url: str | None, token: str | None = ADMIN,
              env: dict[str, str] | None = None) -> Result:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RINGFENCE_")}
    # An empty config home, so a developer's own ~/.config/ringfence/cli.toml cannot leak in.
    # A fixed width, so tables read the same whatever terminal (or test worker) runs the suite.
    clean.update({"XDG_CONFIG_HOME": str(cwd / "home"), "NO_COLOR": "1", "COLUMNS": "200"})
    if url is not None:
        clean["RINGFENCE_URL"] = url
    if token is not None:
        clean["RINGFENCE_TOKEN"] = token
    clean.update(env or {})
    done = subprocess.run([str(RINGFENCE), *args], cwd=cwd, env=clean, capture_output=True, text=True,
                          timeout=60)
    return Result(done.returncode, done.stdout, done.stderr)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_push_history_get_diff_revert(server: ServerProcess, work: Path) -> None:
    def rf(*args: str) -> Result:
        return ringfence(*args, cwd=work, url=server.url)

    limits = write(work / "payments" / "limits.yaml", """\
        limits:
          card: 1000
          atm: 200
        timeout_ms: 200
        """)
    first = rf("push", "payments/limits.yaml", "-m", "first limits")
    assert first.code == 0, first.err
    assert "payments/limits: version 1" in first.out
    assert "+ /timeout_ms: 200" in first.out

    write(limits, """\
        limits:
          card: 5000
        timeout_ms: 500
        """)
    second = rf("push", "payments/limits.yaml", "-m", "raise card limit")
    assert second.code == 0, second.err
    assert "payments/limits: version 2" in second.out
    assert "~ /limits/card: 1000 → 5000" in second.out
    assert "- /limits/atm: 200" in second.out
    assert "~ /timeout_ms: 200 → 500" in second.out

    same = rf("push", "payments/limits.yaml", "-m", "again")
    assert same.code == 0, same.err
    assert "unchanged at version 2" in same.out

    write(work / "configs" / "payments" / "limits.yaml", "limits: {card: 7000}\ntimeout_ms: 500\n")
    write(work / "configs" / "payments" / "fees.json", '{"card": 0.3}\n')
    dry = rf("push", "configs", "--dry-run")
    assert dry.code == 0, dry.err
    assert "payments/limits: valid, would be version 2 → 3" in dry.out
    assert "~ /limits/card: 5000 → 7000" in dry.out
    assert "payments/fees: valid, would be a new config" in dry.out
    history = rf("history", "payments/limits", "--json")
    assert [r["version"] for r in history.json["items"]] == [2, 1]
    assert rf("get", "payments/fees").code == 3

    old = rf("get", "payments/limits", "--version", "1", "--format", "yaml")
    assert old.code == 0, old.err
    assert old.out == "limits:\n  atm: 200\n  card: 1000\ntimeout_ms: 200\n"
    assert tomllib.loads(rf("get", "payments/limits", "--format", "toml").out) == {
        "limits": {"card": 5000}, "timeout_ms": 500}

    table = rf("history", "payments/limits")
    assert table.code == 0, table.err
    for text in ("version", "author", "raise card limit", "first limits", "bootstrap-admin"):
        assert text in table.out

    diff = rf("diff", "payments/limits", "1", "2")
    assert diff.code == 0, diff.err
    assert "1 removed, 2 changed" in diff.out
    assert "~ /limits/card: 1000 → 5000" in diff.out
    assert rf("diff", "payments/limits", "1", "2", "--json").json["summary"] == {
        "added": 0, "removed": 1, "changed": 2}

    reverted = rf("revert", "payments/limits", "--to", "1", "-m", "back to known good")
    assert reverted.code == 0, reverted.err
    assert "payments/limits: version 3, with the value of version 1" in reverted.out
    current = rf("get", "payments/limits", "--json").json
    assert (current["version"], current["value"]) == (3, {"limits": {"card": 1000, "atm": 200}, "timeout_ms": 200})


def test_directory_push_names_files_by_relative_path(server: ServerProcess, work: Path) -> None:
    write(work / "tree" / "dir" / "a.toml", "x = 1\n")
    write(work / "tree" / "dir" / "b.yml", "y: [1, 2]\n")
    write(work / "tree" / ".hidden" / "c.json", "{}\n")
    pushed = ringfence("push", "tree", "-m", "tree", "--json", cwd=work, url=server.url)
    assert pushed.code == 0, pushed.err
    assert [(r["name"], r["revision"]["version"]) for r in pushed.json] == [("dir/a", 1), ("dir/b", 1)]
    listed = ringfence("configs", "--prefix", "dir/", "--json", cwd=work, url=server.url)
    assert [c["name"] for c in listed.json["items"]] == ["dir/a", "dir/b"]


def test_schema_violation_is_refused_with_pointer_and_line(server: ServerProcess, work: Path) -> None:
    write(work / "shop.schema.yaml", """\
        type: object
        properties:
          limits:
            type: object
            properties:
              card: {type: integer, maximum: 10000}
        """)
    bound = ringfence("schema", "set", "shop/*", "shop.schema.yaml", "-m", "sane limits", cwd=work,
                      url=server.url)
    assert bound.code == 0, bound.err
    assert "schema for shop/*: version 1" in bound.out
    assert json.loads(ringfence("schema", "get", "shop/*", cwd=work, url=server.url).out)["type"] == "object"

    write(work / "shop" / "limits.yaml", """\
        # card limits
        limits:
          card: 50000
        """)
    refused = ringfence("push", "shop/limits.yaml", "-m", "typo", cwd=work, url=server.url)
    assert refused.code == 1
    assert "shop/limits.yaml:3:3: /limits/card: 50000 is greater than the maximum of 10000 [schema]" in refused.err
    assert ringfence("history", "shop/limits", cwd=work, url=server.url).code == 3

    unset = ringfence("schema", "unset", "shop/*", "-m", "gone", cwd=work, url=server.url)
    assert unset.code == 0, unset.err
    assert "unset at version 2" in unset.out
    assert ringfence("schema", "get", "shop/*", cwd=work, url=server.url).code == 3


def test_validate_runs_offline(work: Path) -> None:
    write(work / "schema.json", '{"type": "object", "properties": {"port": {"type": "integer"}}}\n')
    write(work / "configs" / "good.yaml", "port: 8080\n")
    write(work / "configs" / "bad.json", '{\n  "port": "eighty"\n}\n')
    write(work / "configs" / "broken.yaml", "port: [1, 2\nname: x\n")
    write(work / "configs" / "secret.toml", 'key = "AKIAABCDEFGHIJKLMNOP"\n')
    # The URL points at a port nobody listens on: any contact with a server would fail.
    result = ringfence("validate", "configs", "--schema", "schema.json", cwd=work, url=closed_url())
    assert result.code == 1, result.err
    assert "configs/bad.json:2:3: /port: 'eighty' is not of type 'integer' [schema]" in result.out
    assert "configs/broken.yaml:2:" in result.out
    assert "configs/secret.toml:1:1: /key: looks like an AWS access key id" in result.out
    assert "good.yaml" not in result.out
    listed = ringfence("validate", "configs", "--schema", "schema.json", "--json", cwd=work, url=closed_url())
    assert listed.code == 1
    assert sorted((p["file"], p["validator"]) for p in listed.json) == [
        ("configs/bad.json", "schema"), ("configs/broken.yaml", "syntax"), ("configs/secret.toml", "secrets")]
    clean = ringfence("validate", "configs/good.yaml", "--schema", "schema.json", cwd=work, url=closed_url())
    assert (clean.code, clean.out.strip()) == (0, "1 file(s) valid")


def test_validate_refuses_a_bad_schema_file(work: Path) -> None:
    write(work / "schema.yaml", "type: 12\n")
    write(work / "c.json", "{}\n")
    result = ringfence("validate", "c.json", "--schema", "schema.yaml", cwd=work, url=closed_url())
    assert result.code == 1
    assert "schema.yaml:1:1: /type:" in result.err


def test_push_reports_parse_errors_with_position(server: ServerProcess, work: Path) -> None:
    write(work / "team" / "broken.json", '{\n  "a": 1,\n  "a": 2\n}\n')
    result = ringfence("push", "team/broken.json", "-m", "x", cwd=work, url=server.url)
    assert result.code == 1
    assert "team/broken.json:3:3: duplicate key 'a'" in result.err
    assert "Traceback" not in result.err


def test_scoped_token_and_wrong_token(server: ServerProcess, work: Path) -> None:
    created = ringfence("token", "create", "--role", "editor", "--scope", "payments/*", "--name", "alice",
                        "--json", cwd=work, url=server.url)
    assert created.code == 0, created.err
    secret = created.json["token"]
    assert created.json["scopes"] == ["payments/*"]
    assert secret.startswith("rf_")

    write(work / "other" / "thing.json", '{"a": 1}\n')
    outside = ringfence("push", "other/thing.json", "-m", "x", cwd=work, url=server.url, token=secret)
    assert outside.code == 4
    assert "outside this token's scopes" in outside.err
    write(work / "payments" / "alice.json", '{"a": 1}\n')
    inside = ringfence("push", "payments/alice.json", "-m", "x", cwd=work, url=server.url, token=secret)
    assert inside.code == 0, inside.err
    me = ringfence("whoami", cwd=work, url=server.url, token=secret)
    assert "alice" in me.out and "editor" in me.out
    assert ringfence("token", "list", cwd=work, url=server.url, token=secret).code == 4

    wrong = "rf_this_is_not_a_real_token_0123456789"
    for result in (
        ringfence("whoami", cwd=work, url=server.url, token=wrong),
        ringfence("--token", wrong, "push", "payments/alice.json", "-m", "x", cwd=work, url=server.url),
    ):
        assert result.code == 4
        assert "not valid" in result.err
        assert wrong not in result.out + result.err

    token_id = created.json["id"]
    listed = ringfence("token", "list", "--json", cwd=work, url=server.url).json["items"]
    assert token_id in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)
    assert ringfence("token", "revoke", token_id, cwd=work, url=server.url).code == 0
    revoked = ringfence("whoami", cwd=work, url=server.url, token=secret)
    assert revoked.code == 4
    assert secret not in revoked.out + revoked.err


def test_audit_shows_the_pushes(server: ServerProcess, work: Path) -> None:
    config = write(work / "audited" / "flags.json", '{"on": false}\n')
    ringfence("push", "audited/flags.json", "-m", "off", cwd=work, url=server.url)
    config.write_text('{"on": true}\n')
    ringfence("push", "audited/flags.json", "-m", "switch on", cwd=work, url=server.url)
    events = ringfence("audit", "--subject", "audited/flags", "--json", cwd=work, url=server.url).json["items"]
    pushes = [(e["action"], e["message"]) for e in events if e["action"].startswith("config.")]
    assert pushes == [("config.push", "switch on"), ("config.push", "off")]
    table = ringfence("audit", "--subject", "audited/flags", "--action", "config.push", cwd=work, url=server.url)
    assert table.code == 0, table.err
    assert "switch on" in table.out and "config.push" in table.out


def test_delete_then_conflict_and_resurrection(server: ServerProcess, work: Path) -> None:
    write(work / "gone" / "soon.json", '{"a": 1}\n')
    assert ringfence("push", "gone/soon.json", "-m", "x", cwd=work, url=server.url).code == 0
    deleted = ringfence("delete", "gone/soon", "-m", "not needed", cwd=work, url=server.url)
    assert (deleted.code, deleted.out.strip()) == (0, "gone/soon: deleted at version 2")
    again = ringfence("delete", "gone/soon", "-m", "twice", cwd=work, url=server.url)
    assert again.code == 5
    assert "the current version is 2" in again.err
    assert ringfence("get", "gone/soon", cwd=work, url=server.url).code == 3
    back = ringfence("push", "gone/soon.json", "-m", "needed after all", cwd=work, url=server.url)
    assert back.code == 0, back.err
    assert "gone/soon: version 3" in back.out


def test_settings_come_from_the_config_file_and_flags(server: ServerProcess, work: Path) -> None:
    write(work / "home" / "ringfence" / "cli.toml", f'url = "{server.url}"\ntoken = "{ADMIN}"\n')
    from_file = ringfence("whoami", cwd=work, url=None, token=None)
    assert from_file.code == 0, from_file.err
    assert "bootstrap-admin" in from_file.out
    # A flag wins over the environment, which wins over the file.
    assert ringfence("whoami", cwd=work, url=closed_url(), token=None).code == 6
    assert ringfence("--url", server.url, "whoami", cwd=work, url=closed_url(), token=None).code == 0


def test_errors_have_exit_codes_and_no_traceback(server: ServerProcess, work: Path) -> None:
    unreachable = ringfence("history", "payments/limits", cwd=work, url=closed_url())
    assert unreachable.code == 6
    assert "cannot reach the ringfence server" in unreachable.err
    assert "ringfence serve" in unreachable.err
    missing = ringfence("get", "no/such", cwd=work, url=server.url)
    assert (missing.code, missing.out) == (3, "")
    assert "does not exist" in missing.err
    assert ringfence("push", "nothing-here.yaml", "-m", "x", cwd=work, url=server.url).code == 1
    assert ringfence("push", "x.yaml", cwd=work, url=server.url).code == 2
    assert ringfence("get", "a/b", "--format", "xml", cwd=work, url=server.url).code == 2
    for result in (unreachable, missing):
        assert "Traceback" not in result.err


def test_help_lists_exit_codes(work: Path) -> None:
    result = ringfence("--help", cwd=work, url=None)
    assert result.code == 0
    assert "Exit codes" in result.out
    assert "6 server unreachable" in " ".join(result.out.split())


def test_cli_does_not_import_the_server_stack(work: Path) -> None:
    probe = ("import sys, ringfence.cli.main; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'fastapi', 'sqlalchemy', 'uvicorn', 'starlette', 'alembic', 'scipy'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_serve_without_the_server_extra_says_how_to_get_it(work: Path) -> None:
    # A None entry in sys.modules makes the import fail as it would without the extra.
    probe = ("import sys; sys.modules['ringfence.server.main'] = None; sys.argv = ['ringfence', 'serve']; "
             "from ringfence.cli.main import run; run()")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 2
    assert "pip install 'ringfence[server]'" in done.stderr


json_keys = st.text(max_size=8)
toml_scalars = (st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10)
                | st.floats(allow_nan=False, allow_infinity=False))
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(json_keys, inner, max_size=4), max_leaves=20)


@given(st.dictionaries(json_keys, toml_values, max_size=5))
def test_toml_output_reads_back_as_the_same_value(value: dict[str, Any]) -> None:
    assert tomllib.loads(to_toml(value)) == value


@pytest.mark.parametrize("value", [[1, 2], {"a": None}, {"a": [1, None]}, {"big": 2**64}])
def test_toml_output_refuses_what_toml_cannot_hold(value: Any) -> None:
    with pytest.raises(CliError, match="use --format json or yaml"):
        to_toml(value)


def test_serve_on_an_unopenable_database_says_why_without_a_traceback(work: Path) -> None:
    done = ringfence("serve", "--port", str(free_port()), "--db", f"sqlite:///{work}/missing/dir/x.db",
                     cwd=work, url=None, token=None)
    assert done.code != 0
    assert "cannot open the database" in done.err
    assert "directory exists" in done.err
    assert "Traceback" not in done.err + done.out
