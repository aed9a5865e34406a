"""Helpers shared by the Splunk app tests and the benchmark: interpreters, environment, app builds."""

import glob
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Dict, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
# Splunk 9.3 to 10.1 run commands under Python 3.9, Splunk 10.2 and later under 3.13; 3.7 is the
# oldest Python 3 that Splunk 8.x shipped, tried where the machine has it.
INTERPRETER_VERSIONS = ("3.9", "3.13", "3.7")


def pyenv_root() -> Optional[str]:
    """Return pyenv's root folder: from ``pyenv root``, else PYENV_ROOT or ~/.pyenv if it exists."""
    try:
        return subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    return root if os.path.isdir(root) else None


def find_interpreter(version: str) -> Optional[str]:
    """Return the newest pyenv Python with this major.minor version, or None."""
    root = pyenv_root()
    if root is None:
        return None
    found = glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python"))
    found.sort(key=lambda path: [int(part) for part in Path(path).parents[1].name.split(".") if part.isdigit()])
    return found[-1] if found else None


def command_environment() -> Dict[str, str]:
    """Return the environment for a command process: the caller's, without PYTHON* variables, so
    that only the app's lib/ and the interpreter's own packages are importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class BuiltApp:
    """The tarball of one build and the app folder extracted from it."""

    def __init__(self, tarball: Path, app_dir: Path) -> None:
        self.tarball = tarball
        self.app_dir = app_dir
        self.script = app_dir / "bin" / "lsassdump.py"


def build_and_extract(out: Path, rules_paths: Optional[Sequence[str]] = None) -> BuiltApp:
    """Build the app into ``out/dist`` and extract it into ``out/etc-apps`` as Splunk installs it."""
    from splunk_app.build import build_app

    tarball = build_app(out / "dist", rules_paths)
    installed = out / "etc-apps"
    with tarfile.open(tarball) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(installed, filter="data")
        else:
            archive.extractall(installed)
    return BuiltApp(tarball, installed / "lsassdump")
