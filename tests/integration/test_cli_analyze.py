"""`ringfence analyze` as a user runs it: a real process, real files, the documented exit codes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

LE = [5, 10, 25, 50, 100, 250, 500, 1000]


def _stream(path: Path, *, error_mult: float = 1.0, rps: float = 60.0, windows: int = 30, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    lines = [json.dumps({"t": 0.0, "instance": f"c{k}", "group": "canary", "event": "start"}) for k in range(3)]
    probs = np.diff(np.concatenate([[0.0], [0.5 * (1 + math.erf(math.log(b / 35) / 0.5 / math.sqrt(2)))
                                            for b in LE], [1.0]]))
    for j in range(1, windows + 1):
        for k in range(15):
            group = "canary" if k < 3 else "baseline"
            n = int(rng.poisson(rps * 10))
            p = 0.006 * (error_mult if group == "canary" else 1.0)
            lines.append(json.dumps({
                "t": 10.0 * j, "dt": 10.0, "instance": f"{group[0]}{k}", "group": group, "requests": n,
                "errors": int(rng.binomial(n, p)),
                "latency_ms": {"le": LE, "counts": rng.multinomial(n, probs / probs.sum()).tolist()},
                "gauges": {"rss_mb": 300.0}}))
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ringfence.cli.main", "analyze", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_regression_fails_with_exit_1_and_the_documented_json(tmp_path: Path) -> None:
    done = run(str(_stream(tmp_path / "bad.jsonl", error_mult=4.0)), "--max-bake", "300", "--json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["decision"] == "fail" and data["decided_at"] <= 120
    assert set(data) == {"decision", "decided_at", "reasons", "metrics", "windows_read"}
    assert data["metrics"]["error_rate"]["verdict"] == "fail"


def test_human_output_is_a_table_and_a_decision(tmp_path: Path) -> None:
    done = run(str(_stream(tmp_path / "bad.jsonl", error_mult=4.0)), "--max-bake", "300")
    assert done.returncode == 1
    assert "error_rate" in done.stdout and "decision: fail" in done.stdout


def test_too_little_data_is_inconclusive_with_exit_3(tmp_path: Path) -> None:
    done = run(str(_stream(tmp_path / "thin.jsonl", rps=0.2, windows=10)), "--max-bake", "100", "--json")
    assert done.returncode == 3, done.stderr
    assert json.loads(done.stdout)["decision"] == "inconclusive"


def test_stdin_and_a_policy_with_an_analysis_section(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("stages:\n  - name: canary\n    bake: {min: 0s, max: 5m}\nanalysis:\n"
                      "  error_rate: {max_ratio: 1.2, min_increase_pp: 0.1}\n  gauges: {rss_mb: {max_ratio: 1.3}}\n")
    text = _stream(tmp_path / "s.jsonl", error_mult=4.0).read_text()
    done = run("-", "--policy", str(policy), "--json", stdin=text)
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert "gauge:rss_mb" in data["metrics"]


def test_a_passing_stage_exits_0(tmp_path: Path) -> None:
    for seed in range(1, 6):
        done = run(str(_stream(tmp_path / f"good{seed}.jsonl", seed=seed, windows=40)), "--max-bake", "400")
        assert done.returncode in (0, 3), done.stdout + done.stderr
        if done.returncode == 0:
            assert "decision: pass" in done.stdout
            return
    pytest.fail("no healthy stream passed")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"t": 10, "dt": 10, "instance": "a", "group": "canary", "requests": 10, "errors": 12}\n',
         "line 1: errors (12) > requests (10)"),
        ('{"t": 10, "dt": 10, "instance": "a", "group": "canary", "requests": 10, "errors": 1}\n{oops\n',
         "line 2: not JSON"),
    ],
)
def test_bad_input_exits_2_with_file_line_and_field_and_no_verdict(tmp_path: Path, content: str,
                                                                    fragment: str) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(content)
    done = run(str(path), "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert f"{path}: {fragment}" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [["missing.jsonl"], ["-", "--method", "magic"], ["-", "--max-bake", "soon"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    done = run(*args, stdin="")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
