"""Fixtures of the portability tests: the bundled rules and the shared events, loaded once."""

from typing import List, Tuple

import pytest

from core import load_rule
from core.events import Event
from core.rules import Rule
from portability_helpers import COMPANION_RULE, LSASS_RULE, SHARED_DATA


@pytest.fixture(scope="session")
def lsass_rule() -> Rule:
    return load_rule(str(LSASS_RULE))


@pytest.fixture(scope="session")
def companion_rule() -> Rule:
    return load_rule(str(COMPANION_RULE))


@pytest.fixture(scope="session")
def shared_events() -> Tuple[List[Event], int]:
    """Every event of the shared data and the count of unreadable records, read once per session."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set LSASSDUMP_SHARED_DATA)")
    from core.portability.report import load_events

    return load_events([str(SHARED_DATA)])
