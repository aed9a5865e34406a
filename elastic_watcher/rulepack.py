"""The rules a deployment carries: loaded and compiled once, with their Elastic queries.

Everything here goes through the core's public verbs (``load_rules``, ``compile_rule``,
``convert``). The queries are always built for the ``ecs`` field mapping, because the poller maps
hits back to Sigma field names through that mapping's table.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import core
from core.mappings import MAPPINGS

MAPPING = "ecs"


@dataclass(frozen=True)
class DeployedRule:
    """One Sigma rule with its compiled form; the Elastic queries are converted on request."""

    rule: core.Rule
    compiled: core.CompiledRule

    @property
    def id(self) -> str:
        return self.rule.id

    def query_dsl(self) -> Dict[str, Any]:
        """Return the rule's Query DSL clause (a bool query with the ECS logsource filter)."""
        return json.loads(core.convert(self.rule, "dsl", MAPPING))  # type: ignore[no-any-return]

    def eql(self) -> str:
        """Return the rule's EQL query text."""
        return core.convert(self.rule, "eql", MAPPING)

    def lucene(self) -> str:
        """Return the rule's Lucene query text."""
        return core.convert(self.rule, "lucene", MAPPING)


def bundled_rules_dir() -> Path:
    """Return the folder of the rules that ship with lsassdump, installed or in a checkout."""
    try:
        from lsassdump_rules import RULES_DIR
    except ImportError:
        return Path(__file__).resolve().parent.parent / "rules"
    return Path(RULES_DIR)


def load(paths: Optional[Sequence[str]]) -> List[DeployedRule]:
    """Load and compile the rules under ``paths`` (default: the bundled rules).

    Raises the core's RuleError for an invalid rule, and ValueError for a rule with no ``id``,
    because every alert and watch id is derived from the rule id.
    """
    rules = core.load_rules(list(paths) if paths else [str(bundled_rules_dir())])
    loaded = []
    for rule in rules:
        if not rule.id:
            raise ValueError(f"{rule.source}: the rule has no 'id'; add a UUID, because alert and watch ids derive from it")
        loaded.append(DeployedRule(rule, core.compile_rule(rule)))
    seen = set()
    for deployed in loaded:
        if deployed.id in seen:
            raise ValueError(f"{deployed.rule.source}: rule id {deployed.id} is used by two rules")
        seen.add(deployed.id)
    return loaded


def logsource_filter() -> Dict[str, Any]:
    """Return the ECS mapping's logsource filter as a Query DSL bool query.

    The clauses come from the mapping table itself (``event.category: process`` and
    ``event.type: start``), so the poller can select the events a rule may see without the
    rule's own query. Clauses are joined with AND, the pairs inside one clause with OR.
    """
    clauses = []
    for clause in MAPPINGS[MAPPING].filter:
        options = [{"term": {name: value}} for name, value in clause]
        if len(options) == 1:
            clauses.append(options[0])
        else:
            clauses.append({"bool": {"should": options, "minimum_should_match": 1}})
    return {"bool": {"filter": clauses}}
