"""Build the lsassdump Splunk app as a reproducible tarball.

The tarball contains ``lsassdump/`` with the app files from this folder (bin/, default/, lib/,
metadata/, README.md) and, under lib/, the repository's core package and splunk-sdk's splunklib.
The rules go in as JSON under lib/lsassdump_splunk/rules/, and default/savedsearches.conf is
generated from them through the SPL target. Entries are sorted, mtimes fixed, owners and
permissions normalized.

Usage: ``python -m splunk_app.build --out DIR [--rules PATH ...]``.
"""

import argparse
import gzip
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import re
import sys
import tarfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

from splunk_app.savedsearches import render_macros, render_savedsearches

logger = logging.getLogger(__name__)

APP_NAME = "lsassdump"
APP_SOURCE = Path(__file__).resolve().parent
REPO_ROOT = APP_SOURCE.parent
# The app's own files; build.py, savedsearches.py and __init__.py stay out of the tarball.
SHIPPED = ("README.md", "bin", "default", "lib", "metadata")
SPLUNK_SDK_VERSION = "2.1.1"
RULES_FOLDER = "lib/lsassdump_splunk/rules"
# Every entry gets this mtime (2024-01-01T00:00:00Z) unless SOURCE_DATE_EPOCH sets another, as the
# reproducible-builds convention has it.
DEFAULT_MTIME = 1704067200
# Semantic Versioning 2.0.0: MAJOR.MINOR.PATCH with optional pre-release and build parts.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class BuildError(Exception):
    """The app cannot be built; the message names the cause and the fix."""


def build_app(out_dir: "os.PathLike[str] | str", rules_paths: Optional[Sequence["os.PathLike[str] | str"]] = None
              ) -> Path:
    """Write ``lsassdump-<version>.tgz`` into ``out_dir`` and return its path.

    ``rules_paths`` are rule files or folders (default: the repository's rules/ folder).
    """
    import core  # imported here so that reading this module needs no core on sys.path

    version = read_app_version(APP_SOURCE / "default" / "app.conf")
    paths = [str(path) for path in (rules_paths if rules_paths is not None else [default_rules_dir()])]
    rules = core.load_rules(paths)
    if not rules:
        raise BuildError(f"no Sigma rules found in {', '.join(paths)}: give a folder or file with .yml rules")

    entries: Dict[str, bytes] = {}
    for relative, data in iter_tree(APP_SOURCE, SHIPPED):
        entries[relative] = data
    for relative, data in iter_tree(Path(core.__file__).resolve().parent, ["."]):
        entries[f"lib/core/{relative}"] = data
    for relative, data in iter_tree(splunklib_folder(), ["."]):
        entries[f"lib/splunklib/{relative}"] = data

    for rule in rules:
        entries[f"{RULES_FOLDER}/{rule_file_name(rule)}"] = rule_json(rule, paths)
    app_conf = entries["default/app.conf"].decode("utf-8")
    entries["default/app.conf"] = stamp_launcher_version(app_conf, version).encode("utf-8")
    entries["default/savedsearches.conf"] = render_savedsearches(rules).encode("utf-8")
    entries["default/macros.conf"] = entries["default/macros.conf"] + render_macros(rules).encode("utf-8")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tarball = out / f"{APP_NAME}-{version}.tgz"
    tarball.write_bytes(pack(entries, source_date_epoch()))
    logger.info("wrote %s (%d files, %d rules)", tarball, len(entries), len(rules))
    return tarball


def default_rules_dir() -> Path:
    """Return the repository's rules/ folder, or the installed lsassdump_rules package outside a checkout."""
    checkout = REPO_ROOT / "rules"
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec("lsassdump_rules")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("no rules/ folder next to splunk_app/ and no lsassdump_rules package: pass --rules PATH")
    return Path(list(spec.submodule_search_locations)[0])


def read_app_version(app_conf: Path) -> str:
    """Return ``[id] version`` from app.conf; raises BuildError unless it is semver."""
    section = None
    version = None
    for line in app_conf.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
        elif section == "id" and "=" in stripped and not stripped.startswith("#"):
            key, value = stripped.split("=", 1)
            if key.strip() == "version":
                version = value.strip()
    if version is None:
        raise BuildError(f"{app_conf}: [id] has no version; add 'version = MAJOR.MINOR.PATCH'")
    if not SEMVER.match(version):
        raise BuildError(f"{app_conf}: version {version!r} is not semantic versioning (MAJOR.MINOR.PATCH), "
                         f"which Splunk AppInspect requires")
    return version


def stamp_launcher_version(app_conf: str, version: str) -> str:
    """Copy the [id] version into [launcher], where AppInspect also requires it.

    Raises BuildError if [launcher] already sets a version, because the version has one home.
    """
    lines = app_conf.splitlines()
    section = None
    header_index = None
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip()
            if section == "launcher":
                header_index = index
        elif section == "launcher" and stripped.split("=", 1)[0].strip() == "version":
            raise BuildError("default/app.conf: remove 'version' from [launcher]; the build copies it from [id]")
    if header_index is None:
        raise BuildError("default/app.conf has no [launcher] stanza; add one with author and description")
    lines.insert(header_index + 1, f"version = {version}")
    return "\n".join(lines) + "\n"


def iter_tree(root: Path, names: Iterable[str]) -> Iterable:
    """Yield (relative path, bytes) for the files under ``root/name``, without caches or local/."""
    for name in names:
        start = root / name
        if start.is_file():
            yield start.relative_to(root).as_posix(), start.read_bytes()
            continue
        for folder, dirs, files in os.walk(start):
            dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "local"))
            for file_name in sorted(files):
                if file_name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(folder) / file_name
                yield path.relative_to(root).as_posix(), path.read_bytes()


def splunklib_folder() -> Path:
    """Return the installed splunklib package folder; raises BuildError unless it is splunk-sdk 2.1.1."""
    try:
        installed = importlib.metadata.version("splunk-sdk")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != SPLUNK_SDK_VERSION:
        raise BuildError(
            f"the build copies splunklib from splunk-sdk {SPLUNK_SDK_VERSION} (found: {installed or 'none'}); "
            f"run: pip install 'splunk-sdk=={SPLUNK_SDK_VERSION}'"
        )
    spec = importlib.util.find_spec("splunklib")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("splunk-sdk is installed but its splunklib package was not found; reinstall splunk-sdk")
    return Path(list(spec.submodule_search_locations)[0])


def rule_file_name(rule) -> str:  # type: ignore[no-untyped-def]
    """Return the JSON file name for a rule: its id, which Sigma requires to be unique."""
    safe = re.sub(r"[^0-9A-Za-z._-]", "_", rule.id)
    return f"{safe}.json"


def rule_json(rule, roots: Sequence[str]) -> bytes:  # type: ignore[no-untyped-def]
    """Serialise a rule's parsed document (dates become ISO strings) with its source path."""
    entry = {"source": relative_source(rule.source, roots), "document": rule.document}
    text = json.dumps(entry, indent=2, sort_keys=True, ensure_ascii=False, default=_json_default)
    return (text + "\n").encode("utf-8")


def relative_source(source: str, roots: Sequence[str]) -> str:
    """Return the rule path relative to the rules folder it came from, so no build path is shipped."""
    for root in roots:
        root_path = Path(root).resolve()
        try:
            return Path(source).resolve().relative_to(root_path.parent).as_posix()
        except ValueError:
            continue
    return Path(source).name


def _json_default(value):  # type: ignore[no-untyped-def]
    isoformat = getattr(value, "isoformat", None)
    if isoformat is None:
        raise TypeError(f"cannot store a {type(value).__name__} in a rule's JSON")
    return isoformat()


def source_date_epoch() -> int:
    """Return the mtime for every entry: SOURCE_DATE_EPOCH when set, else DEFAULT_MTIME."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if not value:
        return DEFAULT_MTIME
    try:
        return int(value)
    except ValueError:
        raise BuildError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds") from None


def entry_mode(relative: str) -> int:
    """Return the file mode: executable only for bin/*.py, as AppInspect expects."""
    if relative.startswith("bin/") and relative.count("/") == 1 and relative.endswith(".py"):
        return 0o755
    return 0o644


def pack(entries: Dict[str, bytes], mtime: int) -> bytes:
    """Return a gzip-compressed tar of ``entries`` under ``lsassdump/``, byte-for-byte reproducible."""
    folders = set()
    for relative in entries:
        parts = relative.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folders.add("/".join(parts[:depth]))

    names = sorted([(name, True) for name in folders] + [(name, False) for name in entries])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_tar_info(APP_NAME, tarfile.DIRTYPE, 0o755, 0, mtime))
        for name, is_folder in names:
            arcname = f"{APP_NAME}/{name}"
            if is_folder:
                tar.addfile(_tar_info(arcname, tarfile.DIRTYPE, 0o755, 0, mtime))
            else:
                data = entries[name]
                info = _tar_info(arcname, tarfile.REGTYPE, entry_mode(name), len(data), mtime)
                tar.addfile(info, io.BytesIO(data))

    compressed = io.BytesIO()
    # filename="" and a fixed mtime keep the gzip header free of build-specific bytes.
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=mtime, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return compressed.getvalue()


def _tar_info(name: str, kind: bytes, mode: int, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def main(argv: Optional[List[str]] = None) -> int:
    """Run the build from the command line; returns the process exit status."""
    parser = argparse.ArgumentParser(prog="python -m splunk_app.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write lsassdump-<version>.tgz into")
    parser.add_argument("--rules", action="append", help="rule file or folder (repeatable; default: rules/)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    import core

    try:
        tarball = build_app(args.out, args.rules)
    except (BuildError, core.LsassdumpError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(tarball)
    return 0


if __name__ == "__main__":
    sys.exit(main())
