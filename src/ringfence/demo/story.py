"""The walk-through: a server, a fleet, a healthy change, a bad one, the incident, the numbers.

Only the public REST API (through the CLI's `ApiClient`) and the SDK (in the fleet's
processes) are used: no store access, no test hooks. A step that does not turn out as the
story says raises `StoryFailed` with a sentence saying what happened instead.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from ringfence.cli.client import ApiClient, ApiError, path
from ringfence.cli.settings import ClientSettings
from ringfence.demo import scenario, summary
from ringfence.demo.fleet import Fleet
from ringfence.demo.narration import Narrator, incident_panel
from ringfence.demo.scenario import CONFIG, PATTERN, POLICY, Change, InstanceSpec
from ringfence.testing.server import ServerProcess

CONTROLLER_INTERVAL = "0.5"  # seconds between the controller's ticks (1 s by default)
REPORTS_SETTLE = 10.0  # seconds to wait for the canaries' last reports on the bad revision


class StoryFailed(Exception):
    """The story did not happen as told; `summary` holds what did."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.message = message
        self.summary = summary


@dataclass(frozen=True)
class Options:
    instances: int = 60
    seed: int = 1


@dataclass
class Running:
    """What `--keep` leaves running, and the summary of the story it ran."""

    server: ServerProcess
    fleet: Fleet
    admin_token: str
    summary: dict[str, Any]


def _max_bakes() -> float:
    from ringfence.core.policy import parse_duration

    return sum(parse_duration(stage.get("bake", {}).get("max", "30m")) for stage in POLICY["stages"])


class Story:
    def __init__(self, options: Options, narrator: Narrator, workdir: Path) -> None:
        self.options = options
        self.say = narrator
        self.workdir = workdir
        self.admin_token = "rf_demo_" + secrets.token_urlsafe(24)
        self.specs: list[InstanceSpec] = scenario.layout(options.instances, options.seed)
        self.result: dict[str, Any] = {"seed": options.seed, "config": CONFIG}
        self.started = time.monotonic()

    # --- the chapters -------------------------------------------------------------------
    @contextlib.contextmanager
    def run(self) -> Iterator[Running]:
        """Tell the whole story; yields with the server and the fleet still running."""
        self.say.title("ringfence demo · trust, but canary",
                       f"A real server and {len(self.specs)} simulated instances of two services in three regions, "
                       "each a real SDK client over loopback HTTP. Their traffic fails, slows down or grows in "
                       "memory according to the config each instance runs. A healthy change walks through every "
                       "ring; a bad one is caught on the canaries and rolled back by itself.")
        self.say.chapter(1, "Set-up", "A schema and a rollout policy are bound; the first version is pushed and, "
                                      "having nothing to compare with, promoted by a person.")
        server = ServerProcess(f"sqlite:///{self.workdir / 'ringfence.db'}", admin_token=self.admin_token,
                               log_path=self.workdir / "server.log",
                               env={"RINGFENCE_CONTROLLER_INTERVAL": CONTROLLER_INTERVAL})
        with server:
            self.say.step(f"ringfence serve is running at {server.url} on SQLite in {self.workdir}")
            admin = ApiClient(ClientSettings(server.url, self.admin_token))
            people: dict[str, ApiClient] = {}
            try:
                self._set_up(admin, people)
                sdk_token = admin.request("POST", "/v1/tokens", body={
                    "role": "sdk", "scopes": [PATTERN], "name": "shop-fleet"})["token"]
                with self._fleet(server.url, sdk_token) as fleet:
                    self.result["fleet"] = summary.fleet_summary(self.specs, fleet.processes)
                    self._healthy(people["bob"])
                    self._bad(people["bob"], admin)
                    self.result["wall_seconds"] = round(time.monotonic() - self.started, 1)
                    yield Running(server, fleet, self.admin_token, self.result)
            finally:
                for client in (admin, *people.values()):
                    client.close()

    def _set_up(self, admin: ApiClient, people: dict[str, ApiClient]) -> None:
        """Schema, a refused typo, policy, the people's tokens (`people`), the first version."""
        admin.request("PUT", path("/v1/schemas", PATTERN), body={
            "schema": scenario.SCHEMA, "message": "what the shop backend settings may hold"})
        self.say.step(f"JSON Schema bound to {PATTERN}: db.connect_timeout_ms and cache.size_mb are integers")
        for name, role in (("alice", "approver"), ("bob", "editor")):
            token = admin.request("POST", "/v1/tokens", body={"role": role, "scopes": [PATTERN], "name": name})
            people[name] = ApiClient(ClientSettings(admin.url, token["token"]))
        try:
            self._push(people["bob"], scenario.TYPO, None)
        except ApiError as exc:
            self.say.step("a push with a typo is refused before it is stored or reaches anyone:", "yellow", "✗")
            for error in exc.errors:
                self.say.note(f"{error['pointer']}: {error['message']} [{error['validator']}]")
        else:
            raise StoryFailed("the schema let a timeout of '250ms' through", self.result)
        admin.request("PUT", path("/v1/policies", PATTERN), body={
            "policy": POLICY, "message": "canary, then one region, then everyone; bakes of seconds for the demo"})
        stages = " → ".join(f"{s['name']} (bake {s['bake']['min']} to {s['bake']['max']})" for s in POLICY["stages"])
        self.say.step(f"policy bound to {PATTERN}: {stages}")
        self.say.note("analysis: error rate x1.2 and +0.1 pp, latency p50 and p99 x1.1, heap_mb gauge x1.3; "
                      "on failure: roll back")
        first = self._push(people["alice"], scenario.FIRST, None)
        rollout = first["rollout"]
        for _ in POLICY["stages"]:
            people["alice"].request("POST", path("/v1/rollouts", str(rollout["id"]), "promote"),
                                    body={"reason": "first version: nothing to compare it with"})
        self.say.step(f"{CONFIG} v{first['revision']['version']} pushed by alice and promoted by her through "
                      "every stage: the first version has no baseline to be judged against")

    @contextlib.contextmanager
    def _fleet(self, url: str, token: str) -> Iterator[Fleet]:
        log = open(self.workdir / "fleet.log", "wb")  # noqa: SIM115 (closed below, after the workers)
        fleet = Fleet(url, token, self.specs, self.options.seed, log=log)
        started = time.monotonic()
        try:
            try:
                fleet.start()
            except BaseException as exc:
                fleet.stop()
                if not isinstance(exc, RuntimeError):
                    raise
                log.flush()
                tail = (self.workdir / "fleet.log").read_text(errors="replace").splitlines()[-8:]
                raise StoryFailed("\n".join([f"the fleet did not start: {exc}", *tail]), self.result) from None
            try:
                processes = f"{fleet.processes} process{'es' if fleet.processes > 1 else ''}"
                self.say.step(f"{len(self.specs)} instances started in {processes} and connected "
                              f"in {time.monotonic() - started:.1f} s, all running v1:")
                self.say.show(self._fleet_table())
                yield fleet
            finally:
                fleet.stop()
        finally:
            log.close()

    def _fleet_table(self) -> Table:
        grid = Table(header_style="bold", box=None, padding=(0, 2))
        grid.add_column("service")
        for region in scenario.REGIONS:
            grid.add_column(region, justify="right")
        grid.add_column("canaries (label canary=true)")
        for service in scenario.SERVICES:
            mine = [s for s in self.specs if s.service == service]
            grid.add_row(service, *(str(sum(s.region == r for s in mine)) for r in scenario.REGIONS),
                         ", ".join(s.id for s in mine if s.canary))
        return grid

    def _healthy(self, bob: ApiClient) -> None:
        self.say.chapter(2, "A healthy change", "bob gives the database a little more slack. Each stage bakes while "
                                                "the analysis compares the instances that got it with those that did "
                                                "not, and passes when the evidence says it is within tolerance.")
        rollout = self._change(bob, scenario.HEALTHY)
        self.result["healthy"] = summary.rollout_summary(rollout)
        if rollout["state"] != "completed":
            raise StoryFailed(summary.problems(self.result)[0], self.result)
        self.say.step(f"completed: the whole fleet runs v{rollout['to_version']}, "
                      f"{self.result['healthy']['seconds']:.0f} s after the push")

    def _bad(self, bob: ApiClient, admin: ApiClient) -> None:
        self.say.chapter(3, "A bad change", "bob tunes for speed: a 40 ms connect timeout and a six times larger "
                                            "cache. The schema accepts it, as it should: the values are valid. "
                                            "Only the canaries find out that they are not safe.")
        rollout = self._change(bob, scenario.BAD)
        self.result["bad"] = bad = summary.rollout_summary(rollout)
        if rollout["state"] != "rolled_back":
            raise StoryFailed(summary.problems(self.result)[0], self.result)
        incident = self._incident(admin, rollout)
        bad["incident"] = summary.incident_summary(incident, self.result["fleet"]["canaries"])
        self.say.section(f"incident {incident['id']}: opened by the rollback, already mitigated")
        self.say.show(incident_panel(incident))
        postmortem = admin.request("GET", path("/v1/incidents", str(incident["id"]), "postmortem"), text=True)
        self.say.section(f"the post-mortem draft (GET /v1/incidents/{incident['id']}/postmortem): "
                         "made from the record; people add the why")
        self.say.markdown(fold_code(postmortem, f"ringfence incident postmortem {incident['id']}"))
        found = summary.problems(self.result)
        if found:
            raise StoryFailed(found[0], self.result)

    # --- helpers ------------------------------------------------------------------------
    def _push(self, client: ApiClient, change: Change, version: int | None) -> dict[str, Any]:
        return client.request("PUT", path("/v1/configs", CONFIG), if_match=version,  # type: ignore[no-any-return]
                              body={"value": change.value, "message": change.message})

    def _change(self, client: ApiClient, change: Change) -> dict[str, Any]:
        current = client.head_version(CONFIG)
        pushed = self._push(client, change, current)
        rollout = pushed["rollout"]
        self.say.step(f"bob pushes v{pushed['revision']['version']}: \"{change.message}\"", "cyan", "→")
        self.say.diff(pushed.get("changes", []))
        url = path("/v1/rollouts", str(rollout["id"]))
        return self.say.follow(lambda: client.get(url), timeout=_max_bakes() + 60.0)

    def _incident(self, admin: ApiClient, rollout: dict[str, Any]) -> dict[str, Any]:
        """The incident the rollback opened, once the canaries' last reports on the bad revision are in."""
        items = admin.get("/v1/incidents", config=CONFIG)["items"]
        found = [i for i in items if str(i.get("rollout_id")) == str(rollout["id"])]
        if not found:
            raise StoryFailed(f"rollout {rollout['id']} was rolled back but opened no incident", self.result)
        url = path("/v1/incidents", str(found[0]["id"]))
        deadline = time.monotonic() + REPORTS_SETTLE
        while True:
            incident: dict[str, Any] = admin.get(url)
            blast = incident.get("blast_radius") or {}
            if blast.get("measured_instances") == blast.get("instances") or time.monotonic() > deadline:
                return incident
            time.sleep(0.5)


def fold_code(markdown: str, full: str, longest: int = 12) -> str:
    """The draft with its long code blocks (the evidence, as JSON) left out, saying where they are."""
    out: list[str] = []
    block: list[str] = []
    for line in markdown.splitlines():
        if block:
            block.append(line)
            if line.startswith("```"):
                out.extend(block if len(block) <= longest + 2 else [
                    f"*({len(block) - 2} lines of {block[0][3:] or 'text'} left out here: `{full}` prints them)*"])
                block = []
        elif line.startswith("```"):
            block = [line]
        else:
            out.append(line)
    return "\n".join(out + block)


def workdir() -> contextlib.AbstractContextManager[str]:
    return tempfile.TemporaryDirectory(prefix="ringfence-demo-")
