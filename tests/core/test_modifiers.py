"""One test group per Sigma value modifier, each checked for a match and a non-match."""

import base64

import pytest

from tests.core.helpers import matches, rule_from_yaml


def detect(tmp_path, key, values):
    lines = "\n".join(f"        - {v}" for v in values)
    return rule_from_yaml(tmp_path, f"sel:\n    {key}:\n{lines}\ncondition: sel")


@pytest.mark.parametrize("key,value,event,expected", [
    ("CommandLine", "'whoami'", "WHOAMI", True),
    ("CommandLine", "'whoami'", "whoami /all", False),
    ("CommandLine|contains", "' -ma '", "x -MA y", True),
    ("CommandLine|contains", "' -ma '", "x\t-ma\ty", False),
    ("CommandLine|startswith", "'proc'", "procdump.exe", True),
    ("CommandLine|startswith", "'proc'", "x procdump.exe", False),
    ("CommandLine|endswith", "'.dmp'", "C:\\o.DMP", True),
    ("CommandLine|endswith", "'.dmp'", "C:\\o.dmp ", False),
    ("CommandLine|cased", "'Whoami'", "Whoami", True),
    ("CommandLine|cased", "'Whoami'", "whoami", False),
    ("CommandLine|contains|cased", "'Ma'", "-Ma", True),
    ("CommandLine|contains|cased", "'Ma'", "-ma", False),
])
def test_string_modifiers(tmp_path, key, value, event, expected):
    rule = detect(tmp_path, key, [value])
    assert matches(rule, {"CommandLine": event}) is expected


def test_contains_keeps_leading_and_trailing_spaces(tmp_path):
    rule = detect(tmp_path, "CommandLine|contains", ["' ls'"])
    assert matches(rule, {"CommandLine": "procdump -ma lsass"})
    assert not matches(rule, {"CommandLine": "procdump -ma\tlsass"})
    assert matches(rule, {"CommandLine": "procdump -ma  lsass"})


@pytest.mark.parametrize("dash,expected", [
    ("-", True), ("/", True), ("\u2013", True), ("\u2014", True), ("\u2015", True),
    ("\u2010", False), ("\u2011", False), ("\u2012", False), ("\u2212", False), ("\uff0d", False), ("\ufe63", False),
])
def test_windash_characters(tmp_path, dash, expected):
    rule = detect(tmp_path, "CommandLine|contains|windash", ["' -ma '"])
    assert matches(rule, {"CommandLine": f"procdump {dash}ma lsass"}) is expected


def test_windash_only_at_word_start(tmp_path):
    rule = detect(tmp_path, "CommandLine|contains|windash", ["'a-b'"])
    # The dash inside a word is not a flag dash: only the literal '-' matches.
    assert matches(rule, {"CommandLine": "xa-by"})
    assert not matches(rule, {"CommandLine": "xa/by"})


def test_all_modifier_requires_every_value(tmp_path):
    rule = detect(tmp_path, "CommandLine|contains|all", ["'-ma'", "'lsass'"])
    assert matches(rule, {"CommandLine": "procdump -ma lsass"})
    assert not matches(rule, {"CommandLine": "procdump -ma w3wp"})


def test_all_with_windash_ors_variants_and_ands_values(tmp_path):
    rule = detect(tmp_path, "CommandLine|contains|windash|all", ["' -ma '", "' -accepteula '"])
    assert matches(rule, {"CommandLine": "p \u2014accepteula /ma x"})
    assert not matches(rule, {"CommandLine": "p -ma x"})


@pytest.mark.parametrize("key,value,event,expected", [
    ("CommandLine|re", "'^proc.*-m[amp] '", "procdump -ma x", True),
    ("CommandLine|re", "'^proc.*-m[amp] '", "PROCDUMP -MA x", False),
    ("CommandLine|re|i", "'^proc.*-m[amp] '", "PROCDUMP -MA x", True),
    ("CommandLine|re|m", "'^lsass$'", "x\nlsass\ny", True),
    ("CommandLine|re", "'^lsass$'", "x\nlsass\ny", False),
    ("CommandLine|re|s", "'a.b'", "a\nb", True),
    ("CommandLine|re", "'a.b'", "a\nb", False),
])
def test_regex_flags(tmp_path, key, value, event, expected):
    rule = detect(tmp_path, key, [value])
    assert matches(rule, {"CommandLine": event}) is expected


def test_cidr(tmp_path):
    rule = detect(tmp_path, "DestinationIp|cidr", ["'10.0.0.0/8'", "'fe80::/10'"])
    assert matches(rule, {"DestinationIp": "10.1.2.3"})
    assert matches(rule, {"DestinationIp": "fe80::1"})
    assert not matches(rule, {"DestinationIp": "11.0.0.1"})
    assert not matches(rule, {"DestinationIp": "not an address"})


def test_base64(tmp_path):
    rule = detect(tmp_path, "CommandLine|base64|contains", ["'lsass'"])
    encoded = base64.b64encode(b"lsass").decode()
    assert matches(rule, {"CommandLine": f"powershell -enc {encoded}"})
    assert not matches(rule, {"CommandLine": "powershell lsass"})


@pytest.mark.parametrize("prefix", [b"", b"a", b"ab", b"abc", b"abcd"])
def test_base64offset_finds_value_at_any_offset(tmp_path, prefix):
    rule = detect(tmp_path, "CommandLine|base64offset|contains", ["'Invoke-Mimikatz'"])
    encoded = base64.b64encode(prefix + b"Invoke-Mimikatz" + b" -x").decode()
    assert matches(rule, {"CommandLine": encoded})
    assert not matches(rule, {"CommandLine": base64.b64encode(prefix + b"Invoke-Mimi").decode()})


@pytest.mark.parametrize("modifier,encode", [
    ("utf16le", lambda s: s.encode("utf-16-le")),
    ("wide", lambda s: s.encode("utf-16-le")),
    ("utf16be", lambda s: s.encode("utf-16-be")),
    ("utf16", lambda s: b"\xff\xfe" + s.encode("utf-16-le")),
])
def test_utf16_then_base64(tmp_path, modifier, encode):
    rule = detect(tmp_path, f"CommandLine|{modifier}|base64", ["'ping'"])
    assert matches(rule, {"CommandLine": base64.b64encode(encode("ping")).decode()})
    assert not matches(rule, {"CommandLine": base64.b64encode(b"ping").decode()})


def test_exists(tmp_path):
    present = rule_from_yaml(tmp_path, "sel:\n    ParentImage|exists: true\ncondition: sel", "a.yml")
    absent = rule_from_yaml(tmp_path, "sel:\n    ParentImage|exists: false\ncondition: sel", "b.yml")
    assert matches(present, {"ParentImage": "x"})
    assert not matches(present, {})
    assert matches(absent, {})
    assert not matches(absent, {"ParentImage": "x"})
    assert matches(absent, {"ParentImage": None})


@pytest.mark.parametrize("modifier,bound,value,expected", [
    ("gt", 10, 11, True), ("gt", 10, 10, False),
    ("gte", 10, 10, True), ("gte", 10, 9, False),
    ("lt", 10, 9, True), ("lt", 10, 10, False),
    ("lte", 10, 10, True), ("lte", 10, "11", False),
    ("gt", 10, "12", True), ("gt", 10, "twelve", False),
])
def test_numeric_comparisons(tmp_path, modifier, bound, value, expected):
    rule = rule_from_yaml(tmp_path, f"sel:\n    Count|{modifier}: {bound}\ncondition: sel")
    assert matches(rule, {"Count": value}) is expected


def test_fieldref(tmp_path):
    rule = rule_from_yaml(tmp_path, "sel:\n    Image|fieldref: ParentImage\ncondition: sel")
    assert matches(rule, {"Image": "C:\\A.exe", "ParentImage": "c:\\a.exe"})
    assert not matches(rule, {"Image": "C:\\A.exe", "ParentImage": "C:\\B.exe"})
    assert not matches(rule, {"Image": "C:\\A.exe"})


def test_neq(tmp_path):
    rule = rule_from_yaml(tmp_path, "sel:\n    User|neq: 'SYSTEM'\ncondition: sel")
    assert matches(rule, {"User": "jdoe"})
    assert not matches(rule, {"User": "system"})
    assert not matches(rule, {})


def test_escaped_wildcards_are_literal(tmp_path):
    rule = detect(tmp_path, "CommandLine", [r"'a\*b\?c'"])
    assert matches(rule, {"CommandLine": "A*B?C"})
    assert not matches(rule, {"CommandLine": "axxbyc"})


def test_unescaped_wildcards(tmp_path):
    rule = detect(tmp_path, "CommandLine", ["'a*b?c'"])
    assert matches(rule, {"CommandLine": "aXXXbYc"})
    assert not matches(rule, {"CommandLine": "aXXXbc"})


def test_backslash_before_ordinary_character_is_literal(tmp_path):
    rule = detect(tmp_path, "Image|endswith", [r"'\procdump.exe'"])
    assert matches(rule, {"Image": r"C:\Tools\procdump.exe"})
    assert not matches(rule, {"Image": r"C:\Tools\xprocdump.exe"})


def test_escaped_backslash_before_wildcard(tmp_path):
    rule = detect(tmp_path, "Image", [r"'C:\\*'"])
    assert matches(rule, {"Image": "C:\\Windows"})
    assert not matches(rule, {"Image": "C:Windows"})


def test_null_value_matches_missing_and_null(tmp_path):
    rule = rule_from_yaml(tmp_path, "sel:\n    ParentImage: null\ncondition: sel")
    assert matches(rule, {})
    assert matches(rule, {"ParentImage": None})
    assert not matches(rule, {"ParentImage": "x"})


def test_keywords_search_every_value(tmp_path):
    rule = rule_from_yaml(tmp_path, "keywords:\n    - 'mimikatz'\n    - 'sekurlsa'\ncondition: keywords")
    assert matches(rule, {"CommandLine": "run SEKURLSA::logonpasswords"})
    assert matches(rule, {"Other": ["a", "x mimikatz y"]})
    assert not matches(rule, {"CommandLine": "whoami"})
