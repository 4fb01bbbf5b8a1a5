"""ringfence: trust, but canary."""

__version__ = "0.1.0"
