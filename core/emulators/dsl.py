"""An evaluator of Elasticsearch Query DSL queries on single documents, and the Elastic field model.

``compile_dsl(query, field_types)`` takes a query as a dict and returns a test on documents. It
supports ``bool`` (``must``, ``filter``, ``should``, ``must_not``, ``minimum_should_match``),
``constant_score``, ``match_all``, ``match_none``, ``term``, ``terms``, ``wildcard``, ``prefix``,
``regexp``, ``exists``, ``range`` (numbers, text, and dates with ``now`` arithmetic) and
``query_string`` (through the Lucene emulator). Any other query type raises ValueError, and so do
analysed ``text`` fields, which it does not model.

Field types decide how a leaf query compares values, as in Elasticsearch:

- ``keyword``, ``wildcard`` and ``constant_keyword`` compare text case-sensitively; a number or a
  boolean in the document is indexed as its text (``4688``, ``true``). ``keyword:lowercase`` is a
  keyword field with the ``lowercase`` normalizer: document values and query values are lowered.
- Numeric types compare numbers; ``boolean`` compares booleans; ``ip`` takes an address or a
  network (``10.0.0.0/8``) in a ``term`` query; ``date`` compares instants.
- A field that ``field_types`` does not name takes its type from each document value, as dynamic
  mapping would, except that a string is queried as ``keyword`` (dynamic mapping adds a ``text``
  field beside it) and that a ``term`` query for a network treats the field as ``ip``.

``case_insensitive: true`` folds ASCII letters only by default (``case_folding="ascii"``), as
Elasticsearch did before Lucene 10.5 (elastic/elasticsearch pull request 153513, July 2026);
``case_folding="casefold"`` folds both sides with Python's ``str.casefold``, as the reference
evaluator does. A multivalued field matches when any of its values matches.
"""

import datetime
import ipaddress
import json
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

Document = Mapping[str, Any]
Test = Callable[[Document], bool]

FOLDINGS = ("ascii", "casefold")
STRING_TYPES = frozenset({"keyword", "wildcard", "constant_keyword"})
LOWERCASE_KEYWORD = "keyword:lowercase"
NUMERIC_TYPES = frozenset({"long", "integer", "short", "byte", "double", "float", "half_float",
                           "scaled_float", "unsigned_long"})
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def compile_query(query: str, mapping: Any = None, case_folding: str = "ascii") -> Test:
    """Compile the JSON text of a query (or of a search body with a ``query`` key)."""
    parsed = json.loads(query)
    if isinstance(parsed, dict) and set(parsed) == {"query"}:
        parsed = parsed["query"]
    field_types = getattr(mapping, "field_types", None)
    return compile_dsl(parsed, field_types, case_folding)


def compile_dsl(query: Mapping[str, Any], field_types: Optional[Mapping[str, str]] = None,
                case_folding: str = "ascii") -> Test:
    """Compile a Query DSL query (a dict such as ``{"bool": {...}}``) into a test on documents."""
    return _Compiler(FieldModel(field_types, case_folding)).query(query)


class FieldModel:
    """Field types of an index, and the case folding of its ``case_insensitive`` queries."""

    def __init__(self, field_types: Optional[Mapping[str, str]] = None, case_folding: str = "ascii") -> None:
        if case_folding not in FOLDINGS:
            raise ValueError(f"case_folding must be one of {', '.join(FOLDINGS)}, not {case_folding!r}")
        self.field_types = dict(field_types or {})
        self.case_folding = case_folding
        for name, field_type in self.field_types.items():
            if field_type in ("text", "match_only_text"):
                raise ValueError(f"field '{name}' is an analysed {field_type} field, which the emulators do not model")

    def fold(self, text: str) -> str:
        """Fold text as a ``case_insensitive`` query does."""
        if self.case_folding == "ascii":
            return text.translate(ASCII_LOWER)
        return text.casefold()

    def values(self, document: Document, name: str) -> List[Any]:
        """Return the indexed values of a field: list elements flattened, nulls dropped."""
        value = document.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return [item for item in value if item is not None]
        return [value]

    def type_of(self, name: str, value: Any) -> str:
        """Return the declared type of a field, or the type dynamic mapping gives this value."""
        declared = self.field_types.get(name)
        if declared is not None:
            return declared
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int):
            return "long"
        if isinstance(value, float):
            return "double"
        return "keyword"

    def keyword_text(self, value: Any, field_type: str) -> Optional[str]:
        """Return the term a string field indexes for a document value (None for objects)."""
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float, str)):
            text = str(value)
        else:
            return None
        return text.lower() if field_type == LOWERCASE_KEYWORD else text

    def is_string_type(self, field_type: str) -> bool:
        return field_type in STRING_TYPES or field_type == LOWERCASE_KEYWORD


# Leaf queries. Each returns a test on a whole document.


def term_query(model: FieldModel, name: str, wanted: Any, case_insensitive: bool = False) -> Test:
    """Return the test of a ``term`` query."""
    declared = model.field_types.get(name)
    network = _network(wanted) if declared in (None, "ip") else None

    def matches(value: Any) -> bool:
        field_type = model.type_of(name, value)
        if network is not None and (declared == "ip" or isinstance(value, str) and "/" in str(wanted)):
            return _in_network(value, network)
        if model.is_string_type(field_type):
            text = model.keyword_text(value, field_type)
            query = model.keyword_text(wanted, field_type)
            if text is None or query is None:
                return False
            if case_insensitive:
                return model.fold(text) == model.fold(query)
            return text == query
        if field_type in NUMERIC_TYPES:
            left, right = _number(value), _number(wanted)
            return left is not None and left == right
        if field_type == "boolean":
            return _boolean(value) is not None and _boolean(value) == _boolean(wanted)
        if field_type == "date":
            return _instant(value) is not None and _instant(value) == _instant(wanted)
        raise ValueError(f"term query on field '{name}' of unsupported type {field_type}")

    return lambda document: any(matches(value) for value in model.values(document, name))


def terms_query(model: FieldModel, name: str, wanted: Sequence[Any]) -> Test:
    """Return the test of a ``terms`` query (case-sensitive, like ``term``)."""
    tests = [term_query(model, name, value) for value in wanted]
    return lambda document: any(test(document) for test in tests)


def wildcard_query(model: FieldModel, name: str, pattern: str, case_insensitive: bool = False) -> Test:
    """Return the test of a ``wildcard`` query: ``*``, ``?``, and ``\\`` escaping the next character."""
    return _text_query(model, name, wildcard_to_python(pattern), case_insensitive, pattern_is_text=True)


def prefix_query(model: FieldModel, name: str, prefix: str, case_insensitive: bool = False) -> Test:
    """Return the test of a ``prefix`` query."""
    return _text_query(model, name, re.escape(prefix) + ".*", case_insensitive, pattern_is_text=True)


def regexp_query(model: FieldModel, name: str, regexp: str, case_insensitive: bool = False) -> Test:
    """Return the test of a ``regexp`` query (Lucene syntax, all flags, whole value)."""
    return _text_query(model, name, lucene_regexp_to_python(regexp), case_insensitive, pattern_is_text=False)


def _text_query(model: FieldModel, name: str, source: str, case_insensitive: bool, pattern_is_text: bool) -> Test:
    declared = model.field_types.get(name)
    if declared is not None and not model.is_string_type(declared):
        raise ValueError(f"a pattern query cannot search the {declared} field '{name}'")
    flags = re.DOTALL
    # Wildcard and prefix patterns fold by rewriting their literals. A regexp cannot be rewritten
    # so, and in casefold mode it folds through Python's IGNORECASE (simple Unicode case folding).
    casefold = case_insensitive and model.case_folding == "casefold" and pattern_is_text
    if case_insensitive and model.case_folding == "ascii":
        # Python's re.ASCII limits IGNORECASE to the letters A-Z and a-z, which is the ASCII folding.
        flags |= re.IGNORECASE | re.ASCII
    elif case_insensitive and not casefold:
        flags |= re.IGNORECASE
    if casefold:
        source = _fold_regex_literals(source)
    if declared == LOWERCASE_KEYWORD and pattern_is_text:
        source = _fold_regex_literals(source, str.lower)
    regex = re.compile(source, flags)

    def matches(value: Any) -> bool:
        field_type = model.type_of(name, value)
        if not model.is_string_type(field_type):
            return False
        text = model.keyword_text(value, field_type)
        if text is None:
            return False
        if casefold:
            text = text.casefold()
        return regex.fullmatch(text) is not None

    return lambda document: any(matches(value) for value in model.values(document, name))


def _fold_regex_literals(source: str, fold: Callable[[str], str] = str.casefold) -> str:
    """Fold the escaped literal characters of a regex that wildcard_to_python or re.escape wrote.

    Only used on those simple forms: escaped characters, ``.`` and ``.*``.
    """
    out = []
    index = 0
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source):
            out.append(re.escape(fold(source[index + 1])))
            index += 2
            continue
        out.append(char if char in ".*()[]^|?+" else re.escape(fold(char)))
        index += 1
    return "".join(out)


def exists_query(model: FieldModel, name: str) -> Test:
    """Return the test of an ``exists`` query: some non-null value is indexed."""
    return lambda document: bool(model.values(document, name))


def range_query(model: FieldModel, name: str, bounds: Mapping[str, Any]) -> Test:
    """Return the test of a ``range`` query with ``gt``, ``gte``, ``lt`` and ``lte`` bounds."""
    known = {"gt", "gte", "lt", "lte", "format", "time_zone", "boost", "_name", "relation"}
    unknown = set(bounds) - known
    if unknown:
        raise ValueError(f"range query on '{name}' has unsupported parameters {sorted(unknown)}")
    checks = [(op, bounds[op]) for op in ("gt", "gte", "lt", "lte") if op in bounds and bounds[op] is not None]
    compare = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
               "lte": lambda a, b: a <= b}

    def matches(value: Any) -> bool:
        field_type = model.type_of(name, value)
        for op, bound in checks:
            pair = _range_pair(value, bound, field_type)
            if pair is None or not compare[op](*pair):
                return False
        return True

    return lambda document: any(matches(value) for value in model.values(document, name))


def _range_pair(value: Any, bound: Any, field_type: str) -> Optional[Tuple[Any, Any]]:
    if field_type in NUMERIC_TYPES:
        left, right = _number(value), _number(bound)
        return None if left is None or right is None else (left, right)
    if field_type == "date" or _instant(value) is not None and _instant(bound) is not None:
        left_time, right_time = _instant(value), _instant(bound)
        return None if left_time is None or right_time is None else (left_time, right_time)
    if field_type in STRING_TYPES or field_type == LOWERCASE_KEYWORD:
        # Keyword fields compare terms as text, so "10" sorts before "9".
        return str(value), str(bound)
    return None


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _boolean(value: Any) -> Optional[bool]:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    return None


def _network(value: Any) -> Optional[Any]:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _in_network(value: Any, network: Any) -> bool:
    try:
        return ipaddress.ip_address(str(value)) in network
    except ValueError:
        return False


_DATE_MATH = re.compile(r"now((?:[+-]\d+[yMwdhHms])*)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "H": 3600, "d": 86400, "w": 604800}


def _instant(value: Any) -> Optional[datetime.datetime]:
    """Return a date value as an aware instant: ISO 8601 text, ``now`` arithmetic, or epoch milliseconds."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value / 1000, tz=datetime.timezone.utc)
    found = _DATE_MATH.fullmatch(value)
    if found:
        moment = datetime.datetime.now(datetime.timezone.utc)
        for sign, amount, unit in re.findall(r"([+-])(\d+)([yMwdhHms])", found.group(1)):
            if unit in ("y", "M"):
                raise ValueError(f"date arithmetic in years or months is not emulated: {value!r}")
            seconds = int(amount) * _UNIT_SECONDS[unit]
            moment += datetime.timedelta(seconds=seconds if sign == "+" else -seconds)
        return moment
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def wildcard_to_python(pattern: str) -> str:
    """Translate a Lucene wildcard pattern into a Python regex for ``fullmatch``."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        # A trailing backslash is a literal backslash, as Lucene's WildcardQuery reads it.
        out.append({"*": ".*", "?": "."}.get(char) or re.escape(char))
        index += 1
    return "".join(out)


class _Compiler:
    """Compiles one query tree against one field model."""

    def __init__(self, model: FieldModel) -> None:
        self.model = model

    def query(self, query: Mapping[str, Any]) -> Test:
        if not isinstance(query, Mapping) or len(query) != 1:
            raise ValueError(f"a query must be an object with one key, not {query!r}")
        kind, body = next(iter(query.items()))
        handler = _QUERY_TYPES.get(kind)
        if handler is None:
            raise ValueError(f"query type '{kind}' is not emulated (supported: {', '.join(sorted(_QUERY_TYPES))})")
        return handler(self, body)

    def bool_(self, body: Mapping[str, Any]) -> Test:
        unknown = set(body) - {"must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name"}
        if unknown:
            raise ValueError(f"bool query has unsupported parameters {sorted(unknown)}")
        required = [self.query(q) for q in _clauses(body, "must") + _clauses(body, "filter")]
        excluded = [self.query(q) for q in _clauses(body, "must_not")]
        optional = [self.query(q) for q in _clauses(body, "should")]
        default = 1 if optional and not required else 0
        needed = _minimum_should_match(body.get("minimum_should_match"), len(optional), default)

        def test(document: Document) -> bool:
            if not all(t(document) for t in required):
                return False
            if any(t(document) for t in excluded):
                return False
            if needed <= 0:
                return True
            return sum(1 for t in optional if t(document)) >= needed

        return test

    def constant_score(self, body: Mapping[str, Any]) -> Test:
        return self.query(body["filter"])

    def match_all(self, body: Any) -> Test:
        return lambda document: True

    def match_none(self, body: Any) -> Test:
        return lambda document: False

    def term(self, body: Mapping[str, Any]) -> Test:
        name, params = _field_params(body, "term", "value")
        return term_query(self.model, name, params["value"], bool(params.get("case_insensitive", False)))

    def terms(self, body: Mapping[str, Any]) -> Test:
        fields = {k: v for k, v in body.items() if k not in ("boost", "_name")}
        if len(fields) != 1:
            raise ValueError(f"terms query needs exactly one field, not {sorted(fields)}")
        name, values = next(iter(fields.items()))
        if not isinstance(values, list):
            raise ValueError("terms lookup (an object in place of the list) is not emulated")
        return terms_query(self.model, name, values)

    def wildcard(self, body: Mapping[str, Any]) -> Test:
        name, params = _field_params(body, "wildcard", "value")
        pattern = params.get("value", params.get("wildcard"))
        return wildcard_query(self.model, name, str(pattern), bool(params.get("case_insensitive", False)))

    def prefix(self, body: Mapping[str, Any]) -> Test:
        name, params = _field_params(body, "prefix", "value")
        return prefix_query(self.model, name, str(params["value"]), bool(params.get("case_insensitive", False)))

    def regexp(self, body: Mapping[str, Any]) -> Test:
        name, params = _field_params(body, "regexp", "value")
        if params.get("flags", "ALL") != "ALL":
            raise ValueError(f"regexp flags {params['flags']!r} are not emulated (only ALL)")
        return regexp_query(self.model, name, str(params["value"]), bool(params.get("case_insensitive", False)))

    def exists(self, body: Mapping[str, Any]) -> Test:
        return exists_query(self.model, str(body["field"]))

    def range(self, body: Mapping[str, Any]) -> Test:
        name, params = _field_params(body, "range", None)
        return range_query(self.model, name, params)

    def query_string(self, body: Mapping[str, Any]) -> Test:
        from core.emulators.lucene import compile_lucene

        unknown = set(body) - {"query", "boost", "_name", "allow_leading_wildcard", "analyze_wildcard", "lenient"}
        if unknown:
            raise ValueError(f"query_string parameters {sorted(unknown)} are not emulated")
        return compile_lucene(str(body["query"]), self.model)


def _clauses(body: Mapping[str, Any], key: str) -> List[Mapping[str, Any]]:
    value = body.get(key, [])
    return list(value) if isinstance(value, list) else [value]


def _minimum_should_match(value: Any, count: int, default: int) -> int:
    if value is None:
        return default
    text = str(value).strip()
    if text.endswith("%"):
        percent = int(text[:-1])
        amount = count * abs(percent) // 100
        return amount if percent >= 0 else count - amount
    number = int(text)
    return number if number >= 0 else count + number


def _field_params(body: Mapping[str, Any], kind: str, short_key: Optional[str]) -> Tuple[str, Dict[str, Any]]:
    """Split ``{field: value}`` or ``{field: {params}}`` into the field name and its parameters."""
    fields = {k: v for k, v in body.items() if k not in ("boost", "_name")}
    if len(fields) != 1:
        raise ValueError(f"{kind} query needs exactly one field, not {sorted(fields)}")
    name, params = next(iter(fields.items()))
    if isinstance(params, Mapping):
        return str(name), dict(params)
    if short_key is None:
        raise ValueError(f"{kind} query on '{name}' needs an object of parameters")
    return str(name), {short_key: params}


_QUERY_TYPES: Dict[str, Callable[[_Compiler, Any], Test]] = {
    "bool": _Compiler.bool_, "constant_score": _Compiler.constant_score, "match_all": _Compiler.match_all,
    "match_none": _Compiler.match_none, "term": _Compiler.term, "terms": _Compiler.terms,
    "wildcard": _Compiler.wildcard, "prefix": _Compiler.prefix, "regexp": _Compiler.regexp,
    "exists": _Compiler.exists, "range": _Compiler.range, "query_string": _Compiler.query_string,
}


# Lucene regular expressions (the syntax of the regexp query, query_string's /.../, EQL regex and
# ES|QL RLIKE), translated into Python regular expressions for fullmatch with re.DOTALL.

_LUCENE_CLASSES = {"d": "0-9", "s": " \\t\\n\\r\\f\\v", "w": "a-zA-Z0-9_"}


def lucene_regexp_to_python(regexp: str) -> str:
    """Translate a Lucene regular expression (all syntax flags) into a Python regex.

    Intersection (``&``), complement (``~``) and numeric intervals (``<1-5>``) raise ValueError.
    """
    parser = _RegexpParser(regexp)
    result = parser.union()
    if parser.index != len(regexp):
        raise ValueError(f"unexpected {regexp[parser.index]!r} at offset {parser.index} of regexp {regexp!r}")
    return result


class _RegexpParser:
    """Recursive descent over Lucene's RegExp grammar, writing Python regex text as it goes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.index = 0

    def peek(self) -> Optional[str]:
        return self.text[self.index] if self.index < len(self.text) else None

    def take(self) -> str:
        if self.index >= len(self.text):
            raise ValueError(f"regexp {self.text!r} ends too early")
        char = self.text[self.index]
        self.index += 1
        return char

    def union(self) -> str:
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.index += 1
            branches.append(self.concatenation())
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    def concatenation(self) -> str:
        parts = []
        while self.peek() is not None and self.peek() not in "|)":
            parts.append(self.repeat())
        return "".join(parts)

    def repeat(self) -> str:
        atom = self.atom()
        while self.peek() is not None and self.peek() in "?*+{":
            char = self.take()
            if char == "{":
                end = self.text.index("}", self.index)
                bounds = self.text[self.index:end]
                self.index = end + 1
                if not re.fullmatch(r"\d+(,\d*)?", bounds):
                    raise ValueError(f"invalid repeat {{{bounds}}} in regexp {self.text!r}")
                atom = f"(?:{atom}){{{bounds}}}"
            else:
                atom = f"(?:{atom}){char}"
        return atom

    def atom(self) -> str:
        char = self.take()
        if char in "&~<":
            raise ValueError(f"the regexp operator {char!r} is not emulated (in {self.text!r})")
        if char == ".":
            return "."
        if char == "@":
            return ".*"
        if char == "#":
            return "(?!)"
        if char == "(":
            if self.peek() == ")":
                self.index += 1
                return ""
            inner = self.union()
            if self.take() != ")":
                raise ValueError(f"unbalanced parenthesis in regexp {self.text!r}")
            return "(?:" + inner + ")"
        if char == '"':
            end = self.text.index('"', self.index)
            literal = self.text[self.index:end]
            self.index = end + 1
            return re.escape(literal)
        if char == "[":
            return self.char_class()
        if char == "\\":
            escaped = self.take()
            if escaped.lower() in _LUCENE_CLASSES:
                negate = "^" if escaped.isupper() else ""
                return f"[{negate}{_LUCENE_CLASSES[escaped.lower()]}]"
            return re.escape(escaped)
        if char in "?*+{})|":
            raise ValueError(f"unexpected {char!r} at offset {self.index - 1} of regexp {self.text!r}")
        return re.escape(char)

    def char_class(self) -> str:
        negate = self.peek() == "^"
        if negate:
            self.index += 1
        items = []
        while self.peek() != "]":
            low = self.class_char()
            if self.peek() == "-" and self.index + 1 < len(self.text) and self.text[self.index + 1] != "]":
                self.index += 1
                items.append(_class_escape(low) + "-" + _class_escape(self.class_char()))
            else:
                items.append(_class_escape(low))
        self.index += 1
        if not items:
            raise ValueError(f"empty character class in regexp {self.text!r}")
        return "[" + ("^" if negate else "") + "".join(items) + "]"

    def class_char(self) -> str:
        char = self.take()
        if char == "\\":
            return self.take()
        return char


def _class_escape(char: str) -> str:
    return "\\" + char if char in "\\]^-[" else char
