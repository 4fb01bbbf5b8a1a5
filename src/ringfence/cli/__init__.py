"""The `ringfence` command: a thin client of the REST API, plus offline validation.

Part of the base install, so nothing here may import the server stack (FastAPI,
SQLAlchemy, uvicorn, ...) at import time; only `ringfence serve` loads it, lazily.
"""
