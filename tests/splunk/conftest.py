"""Fixtures for the Splunk app tests: one app build per session, and the interpreters to run it under."""

import sys
from pathlib import Path
from typing import Any, Callable, List, Mapping, Sequence

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from splunk_support import (  # noqa: E402
    INTERPRETER_VERSIONS, SHARED_DATA, BuiltApp, build_and_extract, command_environment, find_interpreter,
)
from splunkd_stub import run_command  # noqa: E402


@pytest.fixture(scope="session")
def built_app(tmp_path_factory: pytest.TempPathFactory) -> BuiltApp:
    """Build the app once per session from the repository's rules and extract it, as Splunk does."""
    return build_and_extract(tmp_path_factory.mktemp("splunk-app"))


@pytest.fixture(params=INTERPRETER_VERSIONS, ids=lambda version: f"py{version}")
def interpreter(request: pytest.FixtureRequest) -> str:
    """Path of a Python that Splunk runs commands under; skipped where this machine lacks it."""
    path = find_interpreter(request.param)
    if path is None:
        pytest.skip(f"no Python {request.param} here (pyenv versions)")
    return path


@pytest.fixture
def run_lsassdump(built_app: BuiltApp, interpreter: str, tmp_path: Path) -> Callable[..., Any]:
    """Return a function that runs ``| lsassdump <args>`` over chunks of records, as splunkd would."""
    dispatch_dir = tmp_path / "dispatch"
    dispatch_dir.mkdir()

    def run(args: Sequence[str], chunks: Sequence[Sequence[Mapping[str, Any]]],
            extra_flags: Sequence[str] = ()) -> Any:
        argv: List[str] = [interpreter, *extra_flags, str(built_app.script)]
        return run_command(argv, args, chunks, str(dispatch_dir), cwd=str(dispatch_dir), env=command_environment())

    return run


@pytest.fixture(scope="session")
def splunk_shared_data() -> Path:
    """The team's shared event corpus next to the repository; skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
