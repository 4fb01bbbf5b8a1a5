"""`ringfence demo`: trust, but canary, end to end on this machine.

A real server (`ringfence serve` on SQLite in a temporary directory) and a simulated fleet of
real SDK clients (`ringfence.Client` over loopback HTTP, spread over a few processes) whose
traffic fails, slows down or grows its memory according to the config each instance runs.
A healthy change walks through every ring; a bad one is caught on the canaries, rolled back
by itself, and leaves an incident behind. Public API and SDK only.

    scenario   the story's data: the config, its schema, the policy, the changes, the fleet layout
    traffic    how an instance's health follows its config (pure, seeded)
    fleet      the simulated instances, in worker processes
    narration  what the terminal shows as the story unfolds (Rich)
    summary    the numbers at the end, and whether the story happened
    story      the walk-through itself
"""

from __future__ import annotations
