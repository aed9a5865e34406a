"""One root error and one class per phase, each with a location and, where known, the fix."""

from dataclasses import dataclass
from typing import Optional, Union


@dataclass(frozen=True)
class Location:
    """A place in a rule file (line and column, 1-based) or in an event file (record)."""

    file: str
    line: Optional[int] = None
    column: Optional[int] = None
    record: Optional[Union[int, str]] = None

    def __str__(self) -> str:
        if self.record is not None:
            return f"{self.file}: record {self.record}"
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class LsassdumpError(Exception):
    """Root of every error that lsassdump reports to a user."""

    def __init__(self, message: str, location: Optional[Location] = None, fix: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.fix = fix

    def __str__(self) -> str:
        text = self.message
        if self.location is not None:
            text = f"{self.location}: {text}"
        if self.fix:
            text = f"{text} ({self.fix})"
        return text


class RuleError(LsassdumpError):
    """A rule file that is not valid YAML or not a valid Sigma rule."""


class ConditionError(RuleError):
    """A detection condition that does not parse or names an unknown selection."""


class UnsupportedFeatureError(RuleError):
    """A valid Sigma feature that lsassdump does not implement; the message names the feature."""

    def __init__(self, feature: str, location: Optional[Location] = None, fix: Optional[str] = None) -> None:
        message = feature if feature.startswith("unsupported") else f"unsupported: {feature}"
        super().__init__(message, location, fix)


class EventInputError(LsassdumpError):
    """An event file, or one record in it, that cannot be read."""


class MappingError(LsassdumpError):
    """A rule field or logsource that a field mapping does not cover."""


class ConversionError(LsassdumpError):
    """A rule that a target query language cannot express exactly."""
