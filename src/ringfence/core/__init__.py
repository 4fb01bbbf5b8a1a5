"""The pure domain: no I/O, no clock reads, no global state (DESIGN §3)."""
