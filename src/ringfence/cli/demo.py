"""`ringfence demo`: a real server, a simulated fleet of real SDK clients, a healthy change and a
bad one, narrated (see ringfence/demo/). Needs the server extra."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from ringfence.cli import output
from ringfence.cli.exits import ExitCode

INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def demo(
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON on stdout (the story goes "
                                                         "to stderr)")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="leave the server and the fleet running afterwards and "
                                                      "print the dashboard URL and an admin token, until Ctrl-C")]
    = False,
    seed: Annotated[int, typer.Option(help="seed of the fleet's hosts and traffic: the same seed tells the "
                                           "same story")] = 1,
    instances: Annotated[int, typer.Option(min=4, max=400, help="simulated instances, half of each service")] = 60,
) -> None:
    """Show trust-but-canary end to end: a healthy change through every ring, a bad one caught and rolled back.

    Starts `ringfence serve` on SQLite in a temporary directory and simulated instances (real SDK clients).

    Takes about a minute and a half. Exit 0 when the story happened as told, 1 when it did not (and says why).
    """
    try:
        import numpy  # noqa: F401  (the fleet's traffic)

        from ringfence.demo import summary
        from ringfence.demo.narration import Narrator
        from ringfence.demo.story import Options, Story, StoryFailed, workdir
        from ringfence.server import main as _server  # noqa: F401
    except ImportError:
        output.error("the demo runs a server, so it needs the server extra: pip install 'ringfence[server]'")
        raise typer.Exit(ExitCode.USAGE) from None
    narrator = Narrator(output.stderr if as_json else output.stdout)
    # `kill` (SIGTERM) stops the demo as Ctrl-C does, so the server and the fleet are stopped too.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with workdir() as tmp:
            story = Story(Options(instances=instances, seed=seed), narrator, Path(tmp))
            try:
                with story.run() as running:
                    narrator.chapter(4, "Summary", "Read back from the rollouts and the incident.")
                    narrator.show(summary.table(running.summary))
                    result = {"ok": True, **running.summary}
                    if keep:
                        result.update(server=running.server.url, dashboard=running.server.url + "/ui")
                    if as_json:
                        output.print_json(result)
                    if keep:
                        narrator.keep(running.server.url, running.admin_token)
                        _wait_for_interrupt()
            except StoryFailed as exc:
                if as_json:
                    output.print_json({"ok": False, "problem": exc.message, **exc.summary})
                output.error(f"the demo did not go as told: {exc.message}")
                raise typer.Exit(ExitCode.INVALID) from None
    except RuntimeError as exc:  # the server did not start
        output.error(f"the demo could not start: {exc}")
        raise typer.Exit(ExitCode.INVALID) from None
    except KeyboardInterrupt:
        if not keep:
            output.error("interrupted")
            raise typer.Exit(INTERRUPTED) from None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _wait_for_interrupt() -> None:
    try:
        while True:
            time.sleep(3600)
    except RuntimeError as exc:  # the server did not start
        output.error(f"the demo could not start: {exc}")
        raise typer.Exit(ExitCode.INVALID) from None
    except KeyboardInterrupt:
        output.note("stopping the fleet and the server")
