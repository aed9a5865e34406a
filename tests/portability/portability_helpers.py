"""Paths and command helpers shared by the portability tests."""

import argparse
import os
from pathlib import Path
from typing import List

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules"
LSASS_RULE = RULES / "proc_creation_win_sysinternals_procdump_lsass.yml"
COMPANION_RULE = RULES / "proc_creation_win_sysinternals_procdump_lsass_evasion.yml"
SHARED_DATA = Path(os.environ.get("LSASSDUMP_SHARED_DATA") or REPO.parent / "shared" / "data")
UNICODE_CASE = "non-ASCII case folding"


def build_parser() -> argparse.ArgumentParser:
    """Return a parser with only the portability commands, as core.cli registers them."""
    from core.portability.cli import register

    parser = argparse.ArgumentParser(prog="lsassdump")
    register(parser.add_subparsers(dest="command"))
    return parser


def run_command(argv: List[str]) -> int:
    """Parse ``argv`` and run its command; return the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))
