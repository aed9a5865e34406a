"""lsassdump's SPL and KQL against pySigma's Splunk and Kusto backends, rule by rule, by meaning.

Both sides convert every loadable SigmaHQ rule with Sigma's own field names (lsassdump's 'sigma'
mapping, pySigma without a processing pipeline). Where lsassdump's emulator reads pySigma's query,
both queries run on documents built from the rule's own values and on a sample of the shared
process-creation events. Any verdict that differs is a difference in meaning. Every rule lands in
one category of CATEGORIES, each of which docs/targets.md explains; an unknown category fails.

Needs the test-only packages named in docs/targets.md; skips when they are not installed.
"""

import re
import warnings
from collections import Counter
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import pytest

from core import compile_rule
from core.emulators import compile_query
from core.errors import LsassdumpError
from core.ir import ANY, DASH, ONE, And, FieldMatch, Not, NumberMatch, Or, Selection, StringMatch
from core.rules import Rule
from core.targets import convert

sigma_collection = pytest.importorskip("sigma.collection")
splunk_backend = pytest.importorskip("sigma.backends.splunk")
kusto_backend = pytest.importorskip("sigma.backends.kusto")

# What each category means; docs/targets.md gives the reasons.
CATEGORIES = {
    "same meaning": "both queries give the same verdict on every generated and sampled document",
    "keywords: pySigma converts, lsassdump refuses": "deliberate: keyword search is not exact in either language",
    "pySigma refuses, lsassdump converts": "pySigma has no fieldref (and similar) support for this backend",
    "pySigma quotes columns as strings": "pySigma fault: 'a.b' is a KQL string literal, not the column a.b",
    "pySigma splits a wildcard inside a value": "pySigma fault: a*b becomes contains a and contains b, in any order",
    "pySigma tests null with isnull()": "pySigma fault: a KQL string column is never null, so isnull() never holds",
    "pySigma writes '*' as startswith \"\"": "pySigma fault: a missing field then matches a '*' value",
    "pySigma leaves a '?' regex unanchored": "pySigma fault: the value then matches inside longer text",
    # pySigma queries that lsassdump's emulators do not read, by the construct that stops them.
    "not emulated: SPL regex command": "pySigma filters 're' values with '| regex field=...'",
    "not emulated: SPL rex and eval": "pySigma applies regex flags through '| rex' and '| eval'",
    "not emulated: SPL quoted field name": "pySigma quotes field names such as \"cs-host\" in search",
    "not emulated: SPL \\* escape": "pySigma writes a literal '*' as \\*, which Splunk search has no escape for",
    "not emulated: KQL doubled quotes": "pySigma fault: ''name'' around a column is not valid KQL",
    "not emulated: KQL \\* escape": "pySigma fault: \\* is not a KQL string escape",
    "not emulated: KQL dotted column": "pySigma writes a.b bare, which KQL reads as a property of the column a",
}
EVENT_SAMPLE_STEP = 100


def _leaves(node: Any) -> List[FieldMatch]:
    if isinstance(node, Selection):
        return _leaves(node.body)
    if isinstance(node, (And, Or)):
        return [leaf for child in node.children for leaf in _leaves(child)]
    if isinstance(node, Not):
        return _leaves(node.child)
    return [node]


def _literal(pattern: Any, upper: bool) -> str:
    out = []
    for part in pattern.parts:
        if part is ANY:
            out.append("")
        elif part is ONE:
            out.append("x")
        elif part is DASH:
            out.append("-")
        else:
            out.append(part.upper() if upper else part)
    return "".join(out)


def generated_documents(rule: Rule) -> List[Dict[str, Any]]:
    """Build documents from a rule's own values: one per value, and two that combine them all."""
    documents: List[Dict[str, Any]] = []
    combined: Dict[str, Any] = {}
    combined_upper: Dict[str, Any] = {}
    for leaf in _leaves(rule.detection):
        if leaf.field is None:
            continue
        first = True
        for matcher in leaf.matchers:
            if isinstance(matcher, StringMatch):
                for pattern in matcher.patterns:
                    documents.append({leaf.field: _literal(pattern, False)})
                    if first:
                        # Values of several selections on one field are joined, so contains
                        # chains such as the LSASS rule's flags and markers can all hold.
                        combined[leaf.field] = str(combined.get(leaf.field, "")) + _literal(pattern, False)
                        combined_upper[leaf.field] = str(combined_upper.get(leaf.field, "")) + _literal(pattern, True)
                        first = False
            elif isinstance(matcher, NumberMatch):
                documents.append({leaf.field: matcher.value})
                combined.setdefault(leaf.field, matcher.value)
                combined_upper.setdefault(leaf.field, matcher.value)
    return documents + [combined, combined_upper]


def _pysigma_convert(backend: Any, path: str) -> Tuple[Optional[str], str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            queries = backend.convert(sigma_collection.SigmaCollection.from_yaml(open(path, encoding="utf-8").read()))
    except Exception as error:  # pySigma raises many classes, and any of them is a refusal here
        return None, type(error).__name__
    if len(queries) != 1:
        return None, "several queries"
    return str(queries[0]), ""


def classify(target: str, rule: Rule, theirs_text: Optional[str], documents: List[Mapping[str, Any]]) -> str:
    """Return the category of one rule for one target."""
    try:
        ours = convert(rule, target, "sigma")
    except LsassdumpError:
        ours = None
    if ours is None and theirs_text is None:
        return "same meaning"  # both refuse
    if ours is None:
        return "keywords: pySigma converts, lsassdump refuses"
    if theirs_text is None:
        return "pySigma refuses, lsassdump converts"
    if target == "kql":
        theirs_text = "union *\n| where " + theirs_text
    try:
        theirs = compile_query(target, theirs_text)
    except LsassdumpError:
        return _not_emulated(target, theirs_text)
    mine = compile_query(target, ours)
    for document in generated_documents(rule) + list(documents):
        if mine(document) is not theirs(document):
            return _explain_difference(target, rule, theirs_text)
    return "same meaning"


def _not_emulated(target: str, theirs: str) -> str:
    if target == "spl":
        if "\\*" in theirs:
            return "not emulated: SPL \\* escape"
        if "| rex " in theirs:
            return "not emulated: SPL rex and eval"
        if "| regex " in theirs:
            return "not emulated: SPL regex command"
        if re.search(r'(^|[\s(])"[^"]+"( IN |=)', theirs):
            return "not emulated: SPL quoted field name"
    else:
        if "''" in theirs:
            return "not emulated: KQL doubled quotes"
        if "\\*" in theirs:
            return "not emulated: KQL \\* escape"
        if re.search(r"[A-Za-z_]\.[A-Za-z_]", theirs.split("| where ", 1)[1]):
            return "not emulated: KQL dotted column"
    return "not emulated: other construct"


def _explain_difference(target: str, rule: Rule, theirs: str) -> str:
    if target == "kql" and 'startswith ""' in theirs:
        return "pySigma writes '*' as startswith \"\""
    if target == "kql" and "isnull(" in theirs:
        return "pySigma tests null with isnull()"
    if target == "kql" and any(leaf.field and not leaf.field.isidentifier() and f"'{leaf.field}'" in theirs
                               for leaf in _leaves(rule.detection)):
        return "pySigma quotes columns as strings"
    patterns = [pattern for leaf in _leaves(rule.detection) for matcher in leaf.matchers
                if isinstance(matcher, StringMatch) for pattern in matcher.patterns]
    if target == "kql" and any(ANY in pattern.parts[1:-1] for pattern in patterns):
        return "pySigma splits a wildcard inside a value"
    if target == "kql" and "matches regex" in theirs and any(ONE in pattern.parts for pattern in patterns):
        return "pySigma leaves a '?' regex unanchored"
    return "unexplained difference"


@pytest.fixture(scope="module")
def sample_documents(process_events: List[Any]) -> List[Mapping[str, Any]]:
    return [dict(event.fields) for event in process_events[::EVENT_SAMPLE_STEP]]


@pytest.mark.slow
@pytest.mark.parametrize("target, make_backend", [
    ("spl", lambda: splunk_backend.SplunkBackend()),
    ("kql", lambda: kusto_backend.KustoBackend()),
])
def test_pysigma_differences_are_classified(target: str, make_backend: Callable[[], Any],
                                            sigmahq_rules: Tuple[List[Rule], Dict[str, int]],
                                            sample_documents: List[Mapping[str, Any]]) -> None:
    rules, _ = sigmahq_rules
    backend = make_backend()
    counts: Counter = Counter()
    unexplained: List[str] = []
    for rule in rules:
        theirs, _ = _pysigma_convert(backend, rule.source)
        category = classify(target, rule, theirs, sample_documents)
        counts[category] += 1
        if category not in CATEGORIES:
            unexplained.append(rule.source)
    print(f"\n{target}: pySigma comparison over {len(rules)} rules")
    for category, count in counts.most_common():
        print(f"  {count:5d}  {category}")
    assert unexplained == []
    assert counts["same meaning"] > len(rules) * 0.85


def test_generated_documents_hit_lsass_rule(lsass_rule: Rule) -> None:
    evaluator = compile_rule(lsass_rule)
    assert any(evaluator.match(document) for document in generated_documents(lsass_rule))
