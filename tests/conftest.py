"""Fixtures shared by all test folders: the shared data folder beside the repository."""

import os
from pathlib import Path

import pytest

# The shared corpus lives beside the checkout (../shared/data); LSASSDUMP_SHARED_DATA overrides it.
SHARED_DATA = Path(os.environ.get("LSASSDUMP_SHARED_DATA")
                   or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.fixture(scope="session", name="SHARED_DATA")
def shared_data_folder() -> Path:
    """Return the shared data folder, or skip when it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}; set LSASSDUMP_SHARED_DATA")
    return SHARED_DATA
