"""Validators that ship with ringfence (registered under `ringfence.validators`)."""
