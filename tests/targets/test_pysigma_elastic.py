"""Compare the Elastic targets with pySigma's Elasticsearch backend, in meaning rather than in text.

pySigma is a test-only dependency and needs pySigma below 2.0, which conflicts with little but is
best kept apart. Install it into its own virtual environment and point ``PYSIGMA_PYTHON`` at that
environment's interpreter, or install it beside lsassdump; without it this module is skipped:

    python -m venv /opt/pysigma && /opt/pysigma/bin/pip install "pysigma<2" \\
        "pysigma-backend-elasticsearch<2" "pyparsing<3.2"

(pySigma 0.11.23 fails on rules with ``and not`` conditions under pyparsing 3.3.3; 3.1.4 works.)

Both queries of a rule run through lsassdump's emulator of the language on documents built from
the rule's own values. Where the verdicts differ, lsassdump's verdict must equal the reference
evaluator's, so every difference is a pySigma fault; the test prints them by kind. Lucene is
compared in lsassdump's ``as-written`` form and ES|QL without lowering, because pySigma's queries
keep the case as written; the reference is then the rule with every value made case-sensitive.
"""

import importlib.util
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

import pytest

from core import compile_rule
from core.emulators import compile_query
from core.errors import LsassdumpError
from core.ir import ANY, DASH, ONE, And, FieldMatch, Not, NotEqualMatch, NumberMatch, Or, Selection, StringMatch
from core.rules import Rule
from tests.targets.conftest import elastic_query
from tests.targets.test_lucene import cased_copy

CONVERTER = r"""
import json, sys
from sigma.collection import SigmaCollection
from sigma.backends.elasticsearch import EqlBackend, ESQLBackend, LuceneBackend
backends = {"lucene": LuceneBackend(), "eql": EqlBackend(), "esql": ESQLBackend()}
for line in sys.stdin:
    path = line.strip()
    out = {"path": path}
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    for name, backend in backends.items():
        try:
            out[name] = backend.convert(SigmaCollection.from_yaml(text))
        except Exception as error:
            out[name + "_error"] = (type(error).__name__ + ": " + str(error))[:300]
    print(json.dumps(out), flush=True)
"""
TARGETS = ("lucene", "eql", "esql")
OPTIONS: Dict[str, Dict[str, Any]] = {"lucene": {"case": "as-written"}, "eql": {}, "esql": {"lowercase": False}}
# Queries of pySigma that the emulators cannot read, keyed by a part of the error message; each is a
# pySigma fault, because Elasticsearch rejects or misreads them in the same way.
UNREADABLE_KINDS = {
    "invalid escape": "a string escape the language does not define (such as \\* or \\s)",
    "of regexp": "Python regular expression syntax passed to a Lucene regexp",
    "regexp operator": "Python regular expression syntax passed to a Lucene regexp",
    "ends too early": "a regular expression whose backslashes are escaped once instead of twice",
    "of EQL query": "a field name with special characters left without backticks",
}


def pysigma_python() -> Optional[str]:
    """Return an interpreter that has pySigma's Elasticsearch backend, or None."""
    configured = os.environ.get("PYSIGMA_PYTHON")
    if configured:
        return configured
    if importlib.util.find_spec("sigma") and importlib.util.find_spec("sigma.backends.elasticsearch"):
        return sys.executable
    return None


@pytest.fixture(scope="module")
def pysigma_queries(sigmahq_rules: Tuple[List[Rule], Dict[str, int]]) -> Dict[str, Dict[str, Any]]:
    """Convert every SigmaHQ rule with pySigma's Lucene, EQL and ES|QL backends, in four processes."""
    python = pysigma_python()
    if python is None:
        pytest.skip("pySigma's Elasticsearch backend is not installed (set PYSIGMA_PYTHON)")
    paths = sorted(rule.source for rule in sigmahq_rules[0])
    chunks = [paths[index::4] for index in range(4)]

    def convert(chunk: List[str]) -> str:
        done = subprocess.run([python, "-c", CONVERTER], input="\n".join(chunk), capture_output=True,
                              text=True, timeout=1200, check=True)
        return done.stdout

    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(convert, chunks))
    results = {}
    for output in outputs:
        for line in output.splitlines():
            item = json.loads(line)
            results[item["path"]] = item
    return results


def fill(parts: Tuple[Any, ...]) -> str:
    """Return a text that a pattern matches: wildcards filled with letters, dashes as hyphens."""
    fillers = {id(ANY): "x", id(ONE): "y", id(DASH): "-"}
    return "".join(fillers.get(id(part), part) if not isinstance(part, str) else part for part in parts)


def documents_for(rule: Rule) -> List[Dict[str, Any]]:
    """Build documents near the rule's values: each value alone, all together, other case, padded."""
    values: Dict[str, List[Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, (And, Or)):
            for child in node.children:
                walk(child)
        elif isinstance(node, (Not, Selection)):
            walk(node.child if isinstance(node, Not) else node.body)
        elif isinstance(node, FieldMatch) and node.field is not None:
            for matcher in node.matchers:
                matcher = matcher.inner if isinstance(matcher, NotEqualMatch) else matcher
                if isinstance(matcher, StringMatch):
                    values.setdefault(node.field, []).extend(fill(p.parts) for p in matcher.patterns[:3])
                elif isinstance(matcher, NumberMatch):
                    values.setdefault(node.field, []).append(matcher.value)

    walk(rule.detection)
    first = {name: found[0] for name, found in values.items()}
    documents: List[Dict[str, Any]] = [{}, first]
    documents.append({name: v.swapcase() if isinstance(v, str) else v for name, v in first.items()})
    for name, found in values.items():
        for value in found[:6]:
            documents.append({**first, name: value})
            if isinstance(value, str):
                documents.append({name: "a " + value + " b"})
    return documents


def classify(rule: Rule, target: str, theirs: Dict[str, Any]) -> Tuple[str, str]:
    """Return the outcome of one rule and target, and a detail for the failure message."""
    try:
        ours = elastic_query(rule, target, "sigma", **OPTIONS[target])
    except LsassdumpError as error:
        return ("refused by both" if target not in theirs else "refused by lsassdump (deliberate)"), str(error)
    queries = theirs.get(target)
    if not queries:
        return "pySigma failed", str(theirs.get(target + "_error"))
    try:
        their_test = compile_query(target, queries[0], "sigma")
    except ValueError as error:
        for needle, kind in UNREADABLE_KINDS.items():
            if needle in str(error):
                return f"pySigma fault: {kind}", queries[0]
        return "unexplained: the emulator cannot read pySigma's query", f"{error}: {queries[0]}"
    our_test = compile_query(target, ours, "sigma")
    reference = compile_rule(rule if target == "eql" else cased_copy(rule))
    differing = [document for document in documents_for(rule) if our_test(document) != their_test(document)]
    if not differing:
        return "same meaning", ""
    wrong = [document for document in differing if our_test(document) != reference.test(document)]
    if wrong:
        return "unexplained: lsassdump differs from the evaluator", f"{wrong[0]}: {ours}"
    return f"pySigma fault: differs from the reference evaluator ({_likely_cause(queries[0])})", queries[0]


def _likely_cause(query: str) -> str:
    """Name the likely cause of a difference, for the printed summary only."""
    lowered = query.lower()
    if "\\\\" in query and " like " in lowered:
        return "a backslash in a LIKE pattern left unescaped, or a NOT over a null field"
    if " not " in lowered or "not (" in lowered:
        return "a NOT over a comparison with a missing field, which is null in ES|QL"
    return "other"


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_differences_are_pysigma_faults(sigmahq_rules: Tuple[List[Rule], Dict[str, int]],
                                        pysigma_queries: Dict[str, Dict[str, Any]], target: str) -> None:
    outcomes: Dict[str, int] = {}
    unexplained: List[str] = []
    for rule in sigmahq_rules[0]:
        theirs = pysigma_queries.get(rule.source)
        if theirs is None:
            continue
        outcome, detail = classify(rule, target, theirs)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome.startswith("unexplained"):
            unexplained.append(f"{rule.source}: {outcome}: {detail[:300]}")
    print(f"\n{target} compared with pySigma:")
    for outcome, count in sorted(outcomes.items(), key=lambda item: -item[1]):
        print(f"  {count:5d}  {outcome}")
    assert unexplained == []
    assert outcomes.get("same meaning", 0) > 2000
