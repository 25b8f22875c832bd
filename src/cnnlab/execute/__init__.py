"""Executors that run a plan: in this process (local)."""
