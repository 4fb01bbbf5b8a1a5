"""Canary analysis scored against ground truth: both methods side by side, on many simulated stages.

For every family of bench/scenarios.yaml and every seed, the fleet simulator
(ringfence.testing.observations) writes an observation stream in memory; the analyzer reads it through
`parse_observations` and decides with `method="sequential"` (ringfence) and `method="kayenta"` (the
reference); the truth (ringfence.testing.truth) says whether the stage was bad. On a sample of runs the
prefix rule is checked: the stream cut right after `decided_at` must give the same decision.

Reported per method, over the good and bad families (borderline families apart):
detection rate on bad stages, escapes (bad passed: the worst outcome), false failures on healthy
stages, inconclusive rate, median and p90 time to detect (from the start of the regression: its
onset, first crash or silence) and to pass (from the change), as a fraction of max bake, and the share
of healthy stages passed before max bake.

    .venv/bin/python bench/canary_eval.py                       # every family, 20 seeds each, 2 processes
    .venv/bin/python bench/canary_eval.py --seeds 5 --families 'pub-*,mixed-*'
    .venv/bin/python bench/canary_eval.py --json > eval.json
    .venv/bin/python bench/canary_eval.py --seed-offset 1000 --methods sequential   # other seeds, for tuning
"""

from __future__ import annotations

import argparse
import bisect
import fnmatch
import json
import math
import multiprocessing
import sys
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from ringfence.testing.observations import (
    Scenario,
    Truth,
    scenario_from_dict,
    scenario_to_dict,
    simulate,
    to_jsonl,
    truth,
)

HERE = Path(__file__).resolve().parent
METHODS = ("sequential", "kayenta")
TARGETS = {
    "detect": ">= 95%", "escapes": "0", "false_fail": "<= 1%", "inconclusive": "-",
    "ttd_median": "<= 15%", "ttd_p90": "<= 60%", "ttp_median": "-", "pass_early": ">= 50%", "prefix": "0",
}


@dataclass(frozen=True)
class Family:
    id: str
    kind: str  # good | bad | borderline
    desc: str
    spec: Mapping[str, Any]
    seeds: int
    seed: int


def load_families(path: Path, only: Sequence[str] = (), seeds: int | None = None) -> list[Family]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    default_seeds = int(doc.get("defaults", {}).get("seeds", 40))
    out = []
    for raw in doc["families"]:
        fid = str(raw["id"])
        if only and not any(fnmatch.fnmatchcase(fid, pattern) for pattern in only):
            continue
        if raw["kind"] not in ("good", "bad", "borderline"):
            raise ValueError(f"{fid}: kind must be good, bad or borderline")
        out.append(Family(fid, raw["kind"], raw.get("desc", ""), raw.get("spec", {}),
                          seeds if seeds is not None else int(raw.get("seeds", default_seeds)),
                          int(raw.get("seed", zlib.crc32(fid.encode()) & 0xFFFFFF))))
    return out


def resolve(value: Any, rng: np.random.Generator) -> Any:
    """A spec template with every {uniform|loguniform|integers|choice: ...} drawn once."""
    if isinstance(value, Mapping):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "uniform":
                return float(rng.uniform(arg[0], arg[1]))
            if key == "loguniform":
                return float(math.exp(rng.uniform(math.log(arg[0]), math.log(arg[1]))))
            if key == "integers":
                return int(rng.integers(arg[0], arg[1], endpoint=True))
            if key == "choice":
                return arg[int(rng.integers(0, len(arg)))]
        return {k: resolve(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, rng) for v in value]
    return value


def scenario_for(family: Family, run: int) -> Scenario:
    seed = family.seed + run  # run already includes --seed-offset
    spec = resolve(family.spec, np.random.default_rng([seed, 0x5EED]))
    return scenario_from_dict({**spec, "seed": seed})


_TRUTHS: dict[str, Truth] = {}


def truth_of(s: Scenario) -> Truth:
    """The truth does not depend on the seed: computed once per distinct spec (per process)."""
    key = json.dumps({**scenario_to_dict(s), "seed": 0}, sort_keys=True, default=str)
    if key not in _TRUTHS:
        _TRUTHS[key] = truth(s)
    return _TRUTHS[key]


def regression_start(s: Scenario) -> float:
    """When the regression begins: the effect's onset, the first canary crash, or the first silence."""
    e = s.effect
    starts = []
    if e.error_mult != 1 or e.error_add or e.latency_scale != 1 or e.tail_frac_mult != 1 or e.gauge_scale \
            or e.rss_growth_mb_per_min:
        starts.append(e.onset)
    if e.crash_loop is not None and e.crash_loop.instances > 0:
        starts.append(e.crash_loop.first)
    if e.silent_at is not None and e.silent_instances > 0:
        starts.append(e.silent_at)
    return max(0.0, min(starts, default=0.0))


def _decide(records: list[Any], settings: Any, method: str) -> tuple[str, float | None]:
    from ringfence.core.analysis import analyze

    result = analyze(records, settings, method=method)
    return str(result.decision), (None if result.decided_at is None else float(result.decided_at))


def run_one(task: tuple[Family, int, bool, tuple[str, ...]]) -> dict[str, Any]:
    """One family x seed: generate, analyze with each method, check the prefix rule if asked."""
    from ringfence.core.analysis import AnalysisSettings, parse_observations

    family, run, check_prefix, methods = task
    s = scenario_for(family, run)
    started = time.perf_counter()
    lines = to_jsonl(simulate(s)).splitlines()
    generated = time.perf_counter() - started
    tr = truth_of(s)
    out: dict[str, Any] = {
        "family": family.id, "kind": family.kind, "seed": s.seed, "bad": tr.bad, "margin": tr.margin,
        "truth": tr.to_dict(), "start": regression_start(s), "max_bake": s.max_bake, "dt": s.dt,
        "generate_s": round(generated, 4), "methods": {},
    }
    settings = AnalysisSettings(min_bake=s.min_bake or 0.0, max_bake=s.max_bake, gauges=dict(s.gauge_tolerance))
    records = list(parse_observations(lines))
    for method in methods:
        entry: dict[str, Any] = {"prefix": None}
        started = time.perf_counter()
        try:
            entry["decision"], entry["decided_at"] = _decide(records, settings, method)
        except Exception as exc:  # an analyzer crash is scored, not fatal to the whole evaluation
            entry["decision"], entry["decided_at"], entry["error"] = "error", None, f"{type(exc).__name__}: {exc}"
        entry["seconds"] = round(time.perf_counter() - started, 4)
        at = entry["decided_at"]
        if check_prefix and entry["decision"] in ("pass", "fail") and at is not None:
            cut = bisect.bisect_right([r.t for r in records], at)  # one record per line: no blank lines
            try:
                again, _ = _decide(list(parse_observations(lines[:cut])), settings, method)
            except Exception as exc:
                again = f"error ({type(exc).__name__})"
            entry["prefix"] = "same" if again == entry["decision"] else f"{entry['decision']} -> {again}"
        out["methods"][method] = entry
    return out


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize(runs: Iterable[Mapping[str, Any]], method: str) -> dict[str, Any]:
    """The figures of one method over some runs."""
    bad = good = detect = escape = false_fail = inconclusive = early = errors = checked = broken = 0
    ttd: list[float] = []
    ttp: list[float] = []
    for r in runs:
        m = r["methods"][method]
        dec, at, bake = m["decision"], m["decided_at"], r["max_bake"]
        errors += dec == "error"
        inconclusive += dec == "inconclusive"
        if m["prefix"] is not None:
            checked += 1
            broken += m["prefix"] != "same"
        if r["bad"]:
            bad += 1
            if dec == "fail":
                detect += 1
                ttd.append(max(0.0, at - r["start"]) / bake)
            escape += dec == "pass"
        else:
            good += 1
            false_fail += dec == "fail"
            if dec == "pass":
                ttp.append(at / bake)
                early += at <= bake - r["dt"]  # a whole window before the end, whatever the clocks
    n = bad + good
    return {
        "runs": n, "bad": bad, "good": good, "detected": detect, "escapes": escape, "false_failures": false_fail,
        "inconclusive": inconclusive, "errors": errors,
        "detect": detect / bad if bad else None, "false_fail": false_fail / good if good else None,
        "inconclusive_rate": inconclusive / n if n else None,
        "ttd_median": _pct(ttd, 50), "ttd_p90": _pct(ttd, 90), "ttp_median": _pct(ttp, 50), "ttp_p90": _pct(ttp, 90),
        "pass_early": early / good if good else None, "prefix_checked": checked, "prefix_broken": broken,
    }


def _meets(key: str, s: Mapping[str, Any]) -> bool | None:
    v = s.get(key)
    if key == "escapes":
        return s["escapes"] == 0 if s["bad"] else None
    if key == "prefix":
        return s["prefix_broken"] == 0 if s["prefix_checked"] else None
    if v is None:
        return None
    limits = {"detect": v >= 0.95, "false_fail": v <= 0.01, "ttd_median": v <= 0.15, "ttd_p90": v <= 0.60,
              "pass_early": v >= 0.50}
    return limits.get(key)


def _fmt(key: str, s: Mapping[str, Any], color: bool = True) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    text = {
        "detect": f"{pct(s['detect'])} ({s['detected']}/{s['bad']})",
        "escapes": f"{s['escapes']}/{s['bad']}",
        "false_fail": f"{pct(s['false_fail'])} ({s['false_failures']}/{s['good']})",
        "inconclusive": f"{pct(s['inconclusive_rate'])} ({s['inconclusive']}/{s['runs']})",
        "ttd_median": pct(s["ttd_median"]), "ttd_p90": pct(s["ttd_p90"]),
        "ttp_median": pct(s["ttp_median"]), "pass_early": pct(s["pass_early"]),
        "prefix": f"{s['prefix_broken']} broken / {s['prefix_checked']}",
    }[key]
    ok = _meets(key, s) if color else None
    return text if ok is None else (f"[green]{text}[/]" if ok else f"[red]{text}[/]")


LABELS = {
    "detect": "detected (bad)", "escapes": "escapes: bad passed", "false_fail": "false failures (good)",
    "inconclusive": "inconclusive", "ttd_median": "time to detect, median", "ttd_p90": "time to detect, p90",
    "ttp_median": "time to pass, median", "pass_early": "good passed before max bake",
    "prefix": "prefix rule",
}


def _outcome(runs: Sequence[Mapping[str, Any]], method: str) -> str:
    decisions = [r["methods"][method]["decision"] for r in runs]
    s = summarize(runs, method)
    parts = [f"{k[0]}{decisions.count(k)}" for k in ("fail", "pass", "inconclusive", "error") if decisions.count(k)]
    median = s["ttd_median"] if runs[0]["bad"] else s["ttp_median"]
    return " ".join(parts) + ("" if median is None else f"  @{100 * median:.0f}%")


def _short_truth(t: Mapping[str, Any]) -> str:
    """The effect in a few characters: `err x3 +1.2pp`, `p99 x1.9`, `crash loop`, or `A/A`."""
    parts = []
    if t["error_ratio"] != 1:
        parts.append(f"err x{t['error_ratio']:.3g} {t['error_diff_pp']:+.2g}pp")
    parts += [f"{k} x{t[f'latency_{k}_ratio']:.3g}" for k in ("p50", "p99") if t[f"latency_{k}_ratio"] != 1]
    parts += ["crash loop"] * t["crash_loop"] + ["silent"] * t["canary_silent"]
    parts += [f"{g} x{r:.3g}" for g, r in t["gauge_ratios"].items() if r != 1]
    return ", ".join(parts) or "A/A"


def report(runs: list[dict[str, Any]], families: list[Family], methods: Sequence[str], wall: float,
           command: str) -> None:
    console = Console(width=None if sys.stdout.isatty() else 150)
    main = [r for r in runs if r["kind"] != "borderline"]
    overall = Table(title=f"canary_eval: {len(main)} runs of {sum(f.kind != 'borderline' for f in families)} "
                    "good/bad families (borderline apart)")
    overall.add_column("figure")
    overall.add_column("target")
    for method in methods:
        overall.add_column(method)
    sums = {m: summarize(main, m) for m in methods}
    for key, label in LABELS.items():
        overall.add_row(label, TARGETS[key], *(_fmt(key, sums[m]) for m in methods))
    console.print(overall)

    per = Table(title="per family: f=fail p=pass i=inconclusive e=error, @ median time to detect (bad) or pass (good)")
    per.add_column("family")
    per.add_column("truth")
    per.add_column("runs", justify="right")
    for method in methods:
        per.add_column(method)
    by_family: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_family.setdefault(r["family"], []).append(r)
    for fam in families:
        rs = by_family.get(fam.id, [])
        if not rs:
            continue
        nbad = sum(r["bad"] for r in rs)
        why = _short_truth(rs[0]["truth"])
        truth_text = f"{fam.kind} {why}" if fam.kind != "borderline" else f"{nbad}/{len(rs)} bad: {why}"
        if fam.kind != "borderline" and any(r["margin"] != fam.kind for r in rs):
            truth_text = f"[red]{fam.kind}: truth disagrees[/]"
        per.add_row(fam.id, truth_text, str(len(rs)), *(_outcome(rs, m) for m in methods))
    console.print(per)
    border = [r for r in runs if r["kind"] == "borderline"]
    if border:
        bt = Table(title="borderline families (scored by each run's truth)")
        bt.add_column("figure")
        for method in methods:
            bt.add_column(method)
        bsums = {m: summarize(border, m) for m in methods}
        for key in ("detect", "escapes", "false_fail", "inconclusive"):
            bt.add_row(LABELS[key], *(_fmt(key, bsums[m], color=False) for m in methods))
        console.print(bt)
    gen = sum(r["generate_s"] for r in runs)
    speed = ", ".join(f"{m} {1000 * sum(r['methods'][m]['seconds'] for r in runs) / max(len(runs), 1):.0f} ms"
                      for m in methods)
    console.print(f"{command}\nwall {wall:.1f} s; per stream: generate {1000 * gen / max(len(runs), 1):.0f} ms, "
                  f"analyze {speed}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", type=Path, default=HERE / "scenarios.yaml")
    ap.add_argument("--families", default="", help="comma-separated ids or globs (default: all)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per family (default: the file's)")
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="start every family's seeds this far along (tune on --seed-offset 1000, report on 0)")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--prefix-every", type=int, default=5, help="check the prefix rule on every Nth seed (0: never)")
    ap.add_argument("--json", action="store_true", help="print the figures and every run as JSON")
    ap.add_argument("--out", type=Path, help="also write that JSON to this file")
    a = ap.parse_args(argv)
    only = [p.strip() for p in a.families.split(",") if p.strip()]
    families = load_families(a.scenarios, only, a.seeds)
    if not families:
        print(f"no family matches {a.families!r}", file=sys.stderr)
        return 2
    methods = tuple(m.strip() for m in a.methods.split(",") if m.strip())
    try:
        import ringfence.core.analysis  # noqa: F401
    except ImportError as exc:
        print(f"the analyzer is not importable ({exc}); nothing to evaluate", file=sys.stderr)
        return 2
    tasks = [(f, a.seed_offset + k, a.prefix_every > 0 and k % a.prefix_every == 0, methods)
             for f in families for k in range(f.seeds)]
    started = time.perf_counter()
    if a.processes > 1:
        with multiprocessing.get_context("fork").Pool(a.processes) as pool:
            runs = list(pool.imap_unordered(run_one, tasks, chunksize=4))
    else:
        runs = [run_one(t) for t in tasks]
    wall = time.perf_counter() - started
    order = {f.id: i for i, f in enumerate(families)}
    runs.sort(key=lambda r: (order[r["family"]], r["seed"]))
    command = "$ .venv/bin/python bench/canary_eval.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.json or a.out:
        main_runs = [r for r in runs if r["kind"] != "borderline"]
        border = [r for r in runs if r["kind"] == "borderline"]
        doc = {
            "command": command.strip(), "wall_seconds": round(wall, 1), "targets": TARGETS,
            "overall": {m: summarize(main_runs, m) for m in methods},
            "borderline": {m: summarize(border, m) for m in methods},
            "families": {f.id: {"kind": f.kind, "desc": f.desc, **{
                m: summarize([r for r in runs if r["family"] == f.id], m) for m in methods}} for f in families},
            "runs": runs,
        }
        if a.out:
            a.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        if a.json:
            print(json.dumps(doc, indent=1))
    if not a.json:
        report(runs, families, methods, wall, command.strip())
    mismatched = sorted({r["family"] for r in runs if r["kind"] != "borderline" and r["margin"] != r["kind"]})
    if mismatched:
        print(f"truth disagrees with the family's kind in: {', '.join(mismatched)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
