"""The app build: reproducible tarball, Splunk layout, vendored libraries, rules compiled to JSON."""

import configparser
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import core
from splunk_app.build import (
    SPLUNK_SDK_VERSION, BuildError, build_app, read_app_version, stamp_launcher_version,
)
from splunk_support import REPO_ROOT, find_interpreter

APP_SOURCE = REPO_ROOT / "splunk_app"


def members(tarball: Path):
    with tarfile.open(tarball) as archive:
        return archive.getmembers()


def read_member(tarball: Path, name: str) -> bytes:
    with tarfile.open(tarball) as archive:
        handle = archive.extractfile(name)
        assert handle is not None
        return handle.read()


def conf(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment]
    parser.read_string(text)
    return parser


def test_build_is_reproducible(tmp_path):
    first = build_app(tmp_path / "first")
    second = build_app(tmp_path / "second")

    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()


def test_entries_sorted_under_app_folder(built_app):
    names = [member.name for member in members(built_app.tarball)]

    assert names[0] == "lsassdump"
    assert names == sorted(names)
    assert all(name == "lsassdump" or name.startswith("lsassdump/") for name in names)


def test_entries_normalized(built_app):
    for member in members(built_app.tarball):
        assert member.mtime == members(built_app.tarball)[0].mtime
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.isdir() or member.isfile(), member.name


def test_execute_bits_only_on_bin_scripts(built_app):
    for member in members(built_app.tarball):
        if member.isdir():
            assert member.mode == 0o755
            continue
        parts = member.name.split("/")
        is_bin_script = len(parts) == 3 and parts[1] == "bin" and parts[2].endswith(".py")
        assert member.mode == (0o755 if is_bin_script else 0o644), member.name


def test_no_caches_or_local_folder(built_app):
    for member in members(built_app.tarball):
        assert "__pycache__" not in member.name
        assert not member.name.endswith((".pyc", ".pyo"))
        assert "/local/" not in member.name + "/"


def test_layout(built_app):
    names = {member.name for member in members(built_app.tarball)}

    for required in ("default/app.conf", "default/commands.conf", "default/searchbnf.conf",
                     "default/savedsearches.conf", "default/macros.conf", "metadata/default.meta",
                     "bin/lsassdump.py", "README.md", "lib/core/__init__.py", "lib/splunklib/__init__.py",
                     "lib/splunklib/searchcommands/__init__.py", "lib/lsassdump_splunk/command.py",
                     "lib/lsassdump_splunk/field_mappings.json"):
        assert f"lsassdump/{required}" in names
    for build_only in ("build.py", "savedsearches.py", "__init__.py"):
        assert f"lsassdump/{build_only}" not in names


def test_vendored_splunklib_version(built_app):
    text = (built_app.app_dir / "lib" / "splunklib" / "__init__.py").read_text(encoding="utf-8")
    version_tuple = "(" + ", ".join(SPLUNK_SDK_VERSION.split(".")) + ")"

    assert f"__version_info__ = {version_tuple}" in text


def test_no_yaml_parser_shipped(built_app):
    names = [member.name.lower() for member in members(built_app.tarball)]

    assert not any("/yaml/" in name or name.endswith("yaml.py") for name in names)


def test_version_has_one_home():
    source = (APP_SOURCE / "default" / "app.conf").read_text(encoding="utf-8")
    parsed = conf(source)

    assert parsed.has_option("id", "version")
    assert not parsed.has_option("launcher", "version")


def test_version_stamped_into_launcher(built_app):
    shipped = conf(read_member(built_app.tarball, "lsassdump/default/app.conf").decode("utf-8"))
    version = read_app_version(APP_SOURCE / "default" / "app.conf")

    assert shipped.get("launcher", "version") == version
    assert shipped.get("id", "version") == version
    assert built_app.tarball.name == f"lsassdump-{version}.tgz"


def test_launcher_version_in_source_is_rejected():
    with pytest.raises(BuildError, match="remove 'version' from \\[launcher\\]"):
        stamp_launcher_version("[launcher]\nversion = 1.0.0\n", "1.0.0")


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "01.0.0", "1.0.0.0"])
def test_non_semver_version_is_rejected(tmp_path, version):
    app_conf = tmp_path / "app.conf"
    app_conf.write_text(f"[id]\nname = lsassdump\nversion = {version}\n", encoding="utf-8")

    with pytest.raises(BuildError, match="not semantic versioning"):
        read_app_version(app_conf)


def test_rules_compiled_to_json(built_app):
    rules = core.load_rules([str(REPO_ROOT / "rules")])
    folder = built_app.app_dir / "lib" / "lsassdump_splunk" / "rules"
    files = sorted(folder.glob("*.json"))

    assert [path.stem for path in files] == sorted(rule.id for rule in rules)
    for path in files:
        entry = json.loads(path.read_text(encoding="utf-8"))
        loaded = core.load_rule_document(entry["document"], entry["source"])
        original = next(rule for rule in rules if rule.id == loaded.id)
        assert loaded.title == original.title
        assert loaded.detection == original.detection
        assert not Path(entry["source"]).is_absolute()


def test_build_with_rules_argument(tmp_path):
    rule = REPO_ROOT / "rules" / "proc_creation_win_sysinternals_procdump_lsass.yml"
    tarball = build_app(tmp_path, [str(rule)])
    names = [member.name for member in members(tarball)]

    assert "lsassdump/lib/lsassdump_splunk/rules/5afee48e-67dd-4e03-a783-f74259dcf998.json" in names


def test_build_without_rules_fails(tmp_path):
    empty = tmp_path / "no-rules"
    empty.mkdir()

    with pytest.raises(BuildError, match="no Sigma rules found"):
        build_app(tmp_path / "out", [str(empty)])


def test_module_entry_point(tmp_path):
    result = subprocess.run([sys.executable, "-m", "splunk_app.build", "--out", str(tmp_path)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).is_file()


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_shipped_python_compiles(built_app, version):
    interpreter = find_interpreter(version)
    if interpreter is None:
        pytest.skip(f"no Python {version} here")
    ours = [str(path) for folder in ("bin", "lib/core", "lib/lsassdump_splunk")
            for path in sorted((built_app.app_dir / folder).rglob("*.py"))]
    script = "import sys\nfor path in sys.argv[1:]:\n    compile(open(path, encoding='utf-8').read(), path, 'exec')\n"

    result = subprocess.run([interpreter, "-c", script, *ours], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr
