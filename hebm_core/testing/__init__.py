"""Test support shipped with the core: the CLI fuzz harness plugins use for their own inputs."""

from hebm_core.testing.fuzz import CaseResult, nonfinite_in_json, run_cli

__all__ = ["CaseResult", "nonfinite_in_json", "run_cli"]
