"""Every SigmaHQ rule loads and compiles, or is rejected with an error naming the unsupported feature."""

import collections

import pytest

from core import LsassdumpError, UnsupportedFeatureError, compile_rule, load_rule
from core.rules import iter_rule_files
from tests.core.helpers import shared_data

RULES = shared_data() / "sigmahq-rules" / "rules"


@pytest.mark.skipif(not RULES.is_dir(), reason="shared SigmaHQ rules not found")
def test_sigmahq_rules_load_and_compile():
    loaded = 0
    rejected = collections.Counter()
    crashes = []
    for path in iter_rule_files([str(RULES)]):
        try:
            compile_rule(load_rule(path))
            loaded += 1
        except UnsupportedFeatureError as error:
            assert error.location is not None and error.location.file == path
            rejected[error.message] += 1
        except LsassdumpError as error:
            crashes.append(f"{path}: invalid rule: {error}")
        except Exception as error:  # noqa: BLE001 - any other exception is a loader fault to report
            crashes.append(f"{path}: {type(error).__name__}: {error}")
    print(f"\nSigmaHQ rules: {loaded} compiled, {sum(rejected.values())} rejected as unsupported")
    for message, count in rejected.most_common():
        print(f"  {count:5d}  {message}")
    assert crashes == []
    assert loaded + sum(rejected.values()) == 3141
    assert loaded == 3141
