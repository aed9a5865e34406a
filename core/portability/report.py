"""Run rules through the evaluator and through every target's emulator, and collect where they differ.

For each rule, the subjects are the events of the given files that the rule's logsource admits,
plus the corpus generated from the rule. Each (target, mapping) pair converts the rule, compiles
the query with the target's emulator, and evaluates the document the mapping builds from each
subject. The evaluator's verdict is the reference: a subject that the evaluator matches and the
target does not is a false negative, the reverse a false positive.
"""

import dataclasses
import importlib
import importlib.util
import inspect
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple

from core.errors import LsassdumpError
from core.evaluator import compile_node, compile_rule
from core.events import Event
from core.ir import FieldMatch, Selection
from core.mappings import MAPPINGS, FieldMapping
from core.portability.classify import EMULATOR_ERROR, Cause, cause_from_values, classify
from core.portability.corpus import generate
from core.portability.sites import ValueSite, value_sites
from core.rules import Rule

log = logging.getLogger(__name__)

Document = Mapping[str, Any]
QueryTest = Callable[[Document], bool]

OK, NOT_AVAILABLE, REFUSED, ERROR = "ok", "not available", "refused", "error"
FALSE_NEGATIVE, FALSE_POSITIVE, FAILED = "false negative", "false positive", "emulator error"
UNREADABLE = "unreadable query"
CORPUS, EVENTS, QUERY = "corpus", "events", "query"


@dataclass(frozen=True)
class Pair:
    """A query language and the field mapping its queries use."""

    target: str
    mapping: str

    @property
    def label(self) -> str:
        return f"{self.target}/{self.mapping}"


@dataclass(frozen=True)
class Subject:
    """An event under test: a generated case or a real event, with Sigma field names."""

    id: str
    origin: str
    fields: Mapping[str, Any]
    site: Optional[ValueSite] = None
    variant: str = ""


@dataclass(frozen=True)
class Divergence:
    """One subject on which a target's verdict differs from the rule's."""

    pair: Pair
    subject: Subject
    kind: str
    cause: Cause

    @property
    def field(self) -> Optional[str]:
        for site in self.cause.sites:
            if site.field is not None:
                return site.field
        return "CommandLine" if "CommandLine" in self.subject.fields else None

    @property
    def event_value(self) -> Any:
        name = self.field
        return self.subject.fields.get(name) if name else None

    @property
    def values(self) -> str:
        """The rule values involved, as written, or a dash when none is known."""
        labels = list(dict.fromkeys(site.label for site in self.cause.sites))
        if not labels:
            return "-"
        if len(labels) > 3:
            labels = labels[:3] + [f"and {len(labels) - 3} more"]
        return ", ".join(labels)


@dataclass
class PairResult:
    """A target with one mapping on one rule: its status, its query and its counts."""

    pair: Pair
    status: str
    message: str = ""
    query: str = ""
    agree: int = 0
    false_negatives: int = 0
    false_positives: int = 0
    errors: int = 0
    divergences: List[Divergence] = field(default_factory=list)
    # Semantics whose divergences are listed but do not count as a failure (``--accept``).
    accepted: FrozenSet[str] = frozenset()
    # A reference row (a case-sensitive variant nobody asked for): shown, never failing the run.
    reference: bool = False

    @property
    def failing(self) -> List[Divergence]:
        """The divergences whose semantic is not accepted."""
        return [item for item in self.divergences if item.cause.semantic not in self.accepted]

    @property
    def diverges(self) -> bool:
        return self.status == ERROR or bool(self.errors or self.failing)

    @property
    def total(self) -> int:
        return self.agree + self.false_negatives + self.false_positives + self.errors


@dataclass
class RuleReport:
    """One rule: how many subjects it was tested on, and one result per (target, mapping) pair."""

    rule: Rule
    corpus_cases: int
    events: int
    corpus_matches: int
    event_matches: int
    results: List[PairResult]


@dataclass
class Report:
    """The portability report of every rule, with what was read to make it."""

    rules: List[RuleReport]
    event_paths: Tuple[str, ...] = ()
    events_read: int = 0
    read_problems: int = 0

    @property
    def diverges(self) -> bool:
        """Tell whether a pair that is not a reference row diverges or fails."""
        return any(result.diverges and not result.reference for rule in self.rules for result in rule.results)

    def divergences(self) -> List[Divergence]:
        return [item for rule in self.rules for result in rule.results for item in result.divergences]


# Variants of a target: the same emitter module with an option that drops case folding, so that
# the report shows what a naive translation on case-sensitive fields misses. Each maps to the
# query language (emitter and emulator module) and the keyword arguments of its ``emit``.
VARIANTS: Dict[str, Tuple[str, Dict[str, Any]]] = {
    "lucene-as-written": ("lucene", {"case": "as-written"}),
    "esql-as-written": ("esql", {"lowercase": False}),
}


class Backend:
    """Convert rules and compile queries through the emitters and emulators of ``core``.

    Tests replace a backend to plant faults; the report uses nothing else of the targets.
    """

    def targets(self) -> Tuple[str, ...]:
        """Return the target names: the emitters' targets, then their variants."""
        module = importlib.import_module("core.targets")
        names = list(getattr(module, "TARGETS", ()))
        return tuple(names + [name for name in VARIANTS if name not in names])

    def language(self, target: str) -> str:
        """Return the query language of a target, which names its emitter, emulator and mappings."""
        return VARIANTS[target][0] if target in VARIANTS else target

    def unavailable(self, target: str) -> Optional[str]:
        """Return why a target cannot be run (a missing emitter, emulator or option), or None."""
        language = self.language(target)
        for package, what in (("core.targets", "emitter"), ("core.emulators", "emulator")):
            if importlib.util.find_spec(f"{package}.{language}") is None:
                return f"no {what} module {package}.{language}"
        if target in VARIANTS:
            emit = getattr(importlib.import_module(f"core.targets.{language}"), "emit", None)
            parameters = inspect.signature(emit).parameters if emit is not None else {}
            missing = [name for name in VARIANTS[target][1] if name not in parameters]
            if missing:
                return f"the {language} emitter has no option '{missing[0]}'"
        return None

    def convert(self, rule: Rule, target: str, mapping: str) -> str:
        if target not in VARIANTS:
            from core.targets import convert

            return convert(rule, target, mapping)
        from core.mappings import get_mapping
        from core.targets.common import prepare

        language, options = VARIANTS[target]
        field_mapping = get_mapping(mapping)
        module = importlib.import_module(f"core.targets.{language}")
        return str(module.emit(prepare(rule, field_mapping, language), field_mapping, rule, **options))

    def compile(self, target: str, query: str, mapping: str) -> QueryTest:
        from core.emulators import compile_query

        return compile_query(self.language(target), query, mapping)


def pairs_for(backend: Backend, targets: Optional[Sequence[str]] = None,
              mappings: Optional[Sequence[str]] = None) -> List[Pair]:
    """Return every (target, mapping) pair to run: each target with each mapping for its language."""
    chosen_targets = list(targets) if targets else list(backend.targets())
    pairs = []
    for target in chosen_targets:
        language = backend.language(target)
        for name, mapping in MAPPINGS.items():
            if language not in mapping.languages:
                continue
            if mappings and name not in mappings:
                continue
            pairs.append(Pair(target, name))
    return pairs


def build_report(rules: Sequence[Rule], events: Sequence[Event], pairs: Sequence[Pair],
                 backend: Optional[Backend] = None, use_corpus: bool = True,
                 event_paths: Sequence[str] = (), read_problems: int = 0,
                 accept: Iterable[str] = (), reference_targets: Iterable[str] = ()) -> Report:
    """Run each rule over the events and its corpus through the evaluator and every pair.

    Divergences whose semantic is in ``accept`` are kept in the report but make no pair fail, and
    pairs of ``reference_targets`` are shown without ever failing the report.
    """
    backend = backend or Backend()
    reports = [_rule_report(rule, events, pairs, backend, use_corpus) for rule in rules]
    accepted = frozenset(accept)
    references = frozenset(reference_targets)
    for rule_report in reports:
        for result in rule_report.results:
            result.accepted = accepted
            result.reference = result.pair.target in references
    return Report(reports, tuple(event_paths), len(events), read_problems)


def _rule_report(rule: Rule, events: Sequence[Event], pairs: Sequence[Pair], backend: Backend,
                 use_corpus: bool) -> RuleReport:
    compiled = compile_rule(rule)
    subjects: List[Subject] = []
    if use_corpus:
        for case in generate(rule):
            subjects.append(Subject(case.id, CORPUS, case.fields, case.site, case.variant))
    corpus_count = len(subjects)
    for event in events:
        if compiled.admits(event.logsource):
            subjects.append(Subject(f"{event.source}#{event.record}", EVENTS, event.fields))
    expected = [compiled.test(subject.fields) for subject in subjects]
    sites = value_sites(rule)
    site_tests = [compile_node(FieldMatch(site.field, (site.matcher,))) for site in sites]
    results = [_run_pair(rule, pair, subjects, expected, backend, compiled.test, sites, site_tests)
               for pair in pairs]
    return RuleReport(
        rule=rule,
        corpus_cases=corpus_count,
        events=len(subjects) - corpus_count,
        corpus_matches=sum(expected[:corpus_count]),
        event_matches=sum(expected[corpus_count:]),
        results=results,
    )


def _run_pair(rule: Rule, pair: Pair, subjects: Sequence[Subject], expected: Sequence[bool], backend: Backend,
              rule_test: Callable[[Mapping[str, Any]], bool], sites: Sequence[ValueSite],
              site_tests: Sequence[Callable[[Mapping[str, Any]], bool]]) -> PairResult:
    missing = backend.unavailable(pair.target)
    if missing is not None:
        return PairResult(pair, NOT_AVAILABLE, missing)
    try:
        query = backend.convert(rule, pair.target, pair.mapping)
    except LsassdumpError as error:
        return PairResult(pair, REFUSED, str(error))
    except Exception as error:  # an emitter bug: reported as this pair's failure, not raised
        log.exception("emitter %s failed on rule %s", pair.label, rule.source)
        return PairResult(pair, ERROR, f"emitter failed: {type(error).__name__}: {error}")
    try:
        query_test = backend.compile(pair.target, query, pair.mapping)
    except Exception as error:  # the emulator cannot read what the emitter wrote
        log.debug("emulator %s failed to compile the query of rule %s: %s", pair.label, rule.source, error)
        result = PairResult(pair, ERROR, f"emulator could not compile the query: {type(error).__name__}: {error}",
                            query)
        result.divergences.extend(_unreadable_values(rule, pair, backend, sites))
        return result

    mapping = MAPPINGS[pair.mapping]
    result = PairResult(pair, OK, query=query)
    target_test = _target_test(query_test, mapping)
    for subject, wanted in zip(subjects, expected):
        try:
            got = bool(query_test(mapping.document_for(subject.fields)))
        except Exception as error:  # counted and listed, so that one bad event does not hide the rest
            result.errors += 1
            cause = Cause(EMULATOR_ERROR, f"{type(error).__name__}: {error}", ())
            result.divergences.append(Divergence(pair, subject, FAILED, cause))
            continue
        if got == wanted:
            result.agree += 1
            continue
        if wanted:
            result.false_negatives += 1
        else:
            result.false_positives += 1
        cause = classify(subject.fields, rule_test, target_test, mapping, sites, site_tests, subject.site)
        result.divergences.append(Divergence(pair, subject, FALSE_NEGATIVE if wanted else FALSE_POSITIVE, cause))
    return result


def _unreadable_values(rule: Rule, pair: Pair, backend: Backend, sites: Sequence[ValueSite]) -> List[Divergence]:
    """Find the rule values whose own query the emulator cannot read, one divergence each.

    Each value is converted alone, as a rule whose detection is that value only, so that a query
    the emulator rejects as a whole still yields a line naming the value that breaks it.
    """
    mapping = MAPPINGS[pair.mapping]
    found = []
    for site in sites:
        alone = dataclasses.replace(rule, detection=Selection(site.selection, FieldMatch(site.field, (site.matcher,))))
        try:
            backend.compile(pair.target, backend.convert(alone, pair.target, pair.mapping), pair.mapping)
        except LsassdumpError:
            continue  # the emitter rejects this value on its own: not the value that breaks the query
        except Exception as error:  # the value's own query is unreadable: this is the line to report
            cause = cause_from_values((site,), mapping, True)
            detail = f"{cause.detail}; the emulator cannot read its query: {error}"
            subject = Subject(f"query:{site.selection}.{site.field or 'keywords'}#{site.index}", QUERY, {})
            found.append(Divergence(pair, subject, UNREADABLE, Cause(cause.semantic, detail, (site,))))
    return found


def _target_test(query_test: QueryTest, mapping: FieldMapping) -> Callable[[Mapping[str, Any]], Optional[bool]]:
    def test(fields: Mapping[str, Any]) -> Optional[bool]:
        try:
            return bool(query_test(mapping.document_for(fields)))
        except Exception:  # an emulator error on a changed copy only means that copy explains nothing
            return None
    return test


def load_events(paths: Iterable[str]) -> Tuple[List[Event], int]:
    """Read every event under ``paths``; return the events and the number of unreadable records."""
    from core import iter_event_files, read_events

    events: List[Event] = []
    problems = 0
    for path in iter_event_files(list(paths)):
        for item in read_events(path):
            if isinstance(item, Event):
                events.append(item)
            else:
                problems += 1
                log.debug("unreadable: %s", item)
    return events, problems


def summary_counts(report: Report) -> Dict[str, int]:
    """Count the pairs by status and the divergences by kind, over every rule."""
    counts: Dict[str, int] = {}
    for rule in report.rules:
        for result in rule.results:
            counts[result.status] = counts.get(result.status, 0) + 1
            counts[FALSE_NEGATIVE] = counts.get(FALSE_NEGATIVE, 0) + result.false_negatives
            counts[FALSE_POSITIVE] = counts.get(FALSE_POSITIVE, 0) + result.false_positives
            counts[FAILED] = counts.get(FAILED, 0) + result.errors
    return counts
