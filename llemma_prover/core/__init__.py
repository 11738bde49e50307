"""Core layer: types, errors and configuration. Imports nothing heavy (no torch, ray, pexpect)."""
