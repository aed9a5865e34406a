"""The Sigma rules that ship with lsassdump (installed as the package ``lsassdump_rules``)."""

from pathlib import Path

RULES_DIR = Path(__file__).resolve().parent
