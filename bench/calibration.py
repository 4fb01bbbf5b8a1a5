"""Are the analyzer's error rates what it says? Simulated stages at the edge of each promise.

- **At the tolerance**: the canary sits exactly at a tolerance (errors x1.2, latency x1.1). Every
  slot from the earliest pass time (settle x max bake) to the end of the stage is judged, and the
  share of stages in which the metric *itself* passed at some look is reported: the pass bound
  promises at most alpha_pass (0.2 by default) over those looks, whatever the other metrics say.
- **A/A at a raised alpha** (`--aa-alpha A`): healthy fleets of bench/scenarios.yaml's A/A families
  judged with `alpha = A` over the whole stage (min bake = max bake, so every look counts); the
  share of stages failed, overall and per metric, against the promised A.

    .venv/bin/python bench/calibration.py                        # both, 300 stages per fleet
    .venv/bin/python bench/calibration.py --stages 100 --aa-alpha 0.2
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AT_TOLERANCE = {  # fleet spec -> the metric that sits at its tolerance
    "errors x1.2, host spread 0.05": ({"error_rate": 0.008, "hetero": {"traffic": 0.1, "errors": 0.05,
                                                                        "latency": 0.02},
                                       "effect": {"error_mult": 1.2}}, "error_rate"),
    "errors x1.2, no host spread": ({"error_rate": 0.008, "hetero": {"traffic": 0.0, "errors": 0.0, "latency": 0.0},
                                     "effect": {"error_mult": 1.2}}, "error_rate"),
    "errors x1.2, default spread (0.15)": ({"error_rate": 0.008, "effect": {"error_mult": 1.2}}, "error_rate"),
    "latency x1.1, host spread 0.02 (p99)": ({"hetero": {"traffic": 0.1, "errors": 0.05, "latency": 0.02},
                                             "effect": {"latency_scale": 1.1}}, "latency_p99"),
}
AA_FAMILIES = ("pub-aa-basic", "large-aa", "drift-aa", "hetero-extreme-aa", "bursts-aa", "pareto-aa", "mixed-aa",
               "single-canary-aa")


def _metric_passes(task: tuple[dict[str, Any], str, int]) -> bool:
    """Did `metric` itself pass at some look of this stage (the other metrics aside)?"""
    from ringfence.core.analysis import AnalysisSettings, parse_observations
    from ringfence.core.analysis.analyzer import Analyzer
    from ringfence.testing.observations import scenario_from_dict, simulate, to_jsonl

    spec, metric, seed = task
    s = scenario_from_dict({**spec, "seed": 7000 + seed})
    settings = AnalysisSettings(min_bake=0, max_bake=s.max_bake)
    earliest = max(settings.min_bake, settings.settle * settings.max_bake)  # the looks a pass may take
    analyzer = Analyzer(settings)
    passed = False
    for record in parse_observations(to_jsonl(simulate(s)).splitlines()):
        analyzer.add(record)
        if record.t > earliest:  # a record past `earliest` has closed the slots before it
            found = analyzer.result().metrics.get(metric)
            passed = passed or (found is not None and found.verdict == "pass")
        if analyzer.final:
            break
    return passed


def _aa_fails(task: tuple[str, int, float]) -> list[str]:
    """The metrics that failed one A/A stage judged at `alpha` ([] when it did not fail)."""
    sys.path.insert(0, str(HERE))
    import canary_eval
    from ringfence.core.analysis import AnalysisSettings, analyze, parse_observations
    from ringfence.testing.observations import simulate, to_jsonl

    family_id, run, alpha = task
    (family,) = canary_eval.load_families(HERE / "scenarios.yaml", [family_id])
    s = canary_eval.scenario_for(family, run)
    settings = AnalysisSettings(min_bake=s.max_bake, max_bake=s.max_bake, alpha=alpha,
                                gauges=dict(s.gauge_tolerance))
    result = analyze(parse_observations(to_jsonl(simulate(s)).splitlines()), settings)
    return [name for name, m in result.metrics.items() if m.verdict == "fail"] if result.decision == "fail" else []


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stages", type=int, default=300, help="stages per fleet at the tolerance")
    ap.add_argument("--aa-alpha", type=float, default=0.2, help="alpha the A/A fleets are judged at")
    ap.add_argument("--aa-seeds", type=int, default=40, help="stages per A/A family")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {"command": "$ .venv/bin/python bench/calibration.py " + " ".join(argv or sys.argv[1:]),
                           "at_tolerance": {}, "aa": {}}
    with multiprocessing.Pool(args.processes) as pool:
        for label, (spec, metric) in AT_TOLERANCE.items():
            passed = pool.map(_metric_passes, [(spec, metric, i) for i in range(args.stages)])
            out["at_tolerance"][label] = {"metric": metric, "stages": args.stages, "passed": sum(passed),
                                          "rate": sum(passed) / args.stages}
        tasks = [(f, 2000 + i, args.aa_alpha) for f in AA_FAMILIES for i in range(args.aa_seeds)]
        fails = pool.map(_aa_fails, tasks)
    per_metric = collections.Counter(name for names in fails for name in names)
    failed = sum(1 for names in fails if names)
    out["aa"] = {"alpha": args.aa_alpha, "stages": len(tasks), "failed": failed, "rate": failed / len(tasks),
                 "by_metric": dict(per_metric)}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print("At the tolerance: share of stages where that metric passed at some look (promise: <= alpha_pass = 0.2)")
    for label, r in out["at_tolerance"].items():
        print(f"  {label:40s} {r['metric']:12s} {r['passed']:4d}/{r['stages']}  {100 * r['rate']:.1f}%")
    aa = out["aa"]
    print(f"A/A at alpha = {aa['alpha']}: {aa['failed']}/{aa['stages']} stages failed ({100 * aa['rate']:.2f}%), "
          f"by metric {aa['by_metric'] or '{}'}")
    print(out["command"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
