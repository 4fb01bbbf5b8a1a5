"""Helpers for tests, yours and ours: a real ringfence server process, a throwaway PostgreSQL."""
