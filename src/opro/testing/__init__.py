"""Helpers for testing opro and code built on it: a fault-injecting OpenAI-compatible server."""
