"""`ringfence schema`: bind, show, list the history of and unbind JSON Schemas."""

from __future__ import annotations

from ringfence.cli.bindings import Kind, binding_app
from ringfence.cli.files import load_schema
from ringfence.cli.formats import render

SCHEMA = Kind(
    "schema", "schemas", load_schema, lambda document: render(document, "json"), file_metavar="SCHEMA_FILE",
    set_help="Bind a schema; refused while configs it would govern break it, unless --force.",
    force_help="bind even if configs it governs break it",
)
app = binding_app(SCHEMA, "Bind JSON Schemas (2020-12) to config names or prefixes.")
