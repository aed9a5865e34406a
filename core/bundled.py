"""Where the bundled rules and the bundled sample live, installed or in a source checkout."""

from pathlib import Path


def bundled_rules_dir() -> Path:
    """Return the folder of the rules that ship with lsassdump."""
    try:
        from lsassdump_rules import RULES_DIR  # installed: rules/ becomes the package lsassdump_rules
    except ImportError:
        return Path(__file__).resolve().parent.parent / "rules"
    return Path(RULES_DIR)


def sample_path() -> Path:
    """Return the bundled sample: Sysmon process-creation events written by the lsassdump team."""
    return Path(__file__).resolve().parent / "sample" / "sample_sysmon.jsonl"
