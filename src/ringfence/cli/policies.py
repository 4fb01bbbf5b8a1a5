"""`ringfence policy`: bind, show, list the history of and unbind rollout policies.

A policy file is checked here with the rules the server applies (`core.policy.parse_policy`),
so every mistake is reported at once with its line in the file, before anything is sent.
"""

from __future__ import annotations

from ringfence.cli.bindings import Kind, binding_app
from ringfence.cli.files import load_policy
from ringfence.cli.formats import render

# YAML is how policies are written, so `policy get P > policy.yaml` gives back a file to edit.
POLICY = Kind(
    "policy", "policies", load_policy, lambda document: render(document, "yaml"), file_metavar="FILE",
    set_help="Bind a rollout policy (checked here first); the most specific pattern binding a config wins.",
)
app = binding_app(POLICY, "Bind rollout policies (stages, selectors, bakes) to config names or prefixes.")
