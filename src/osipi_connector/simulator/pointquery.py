"""PIPoint search queries (`points/search?query=...`), as the PI Web API reference defines them.

Grammar (PIPoint Search Query Syntax): OR-separated groups of filters joined by `AND` or whitespace,
optionally in parentheses; a filter is `Attribute<op>Value` with op `:`/`:=`, `:<>`, `:<`, `:<=`,
`:>`, `:>=`, or a bare value meaning `Tag:=value`. Values may be quoted ('..' or ".."), `\\x` escapes
a character, `*` and `?` are wildcards. Aliases: Name=Tag, Description=Descriptor, DataType=PointType,
PointClass=PtClassName. Value filters (Value, TimeStamp, IsGood...) are refused with a clear error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

ALIASES = {"name": "tag", "description": "descriptor", "datatype": "pointtype", "pointclass": "ptclassname"}
VALUE_FILTERS = {"value", "timestamp", "substituted", "questionable", "annotated", "isgood"}
_OPERATORS = (":<>", ":<=", ":>=", ":=", ":<", ":>", ":")


class QueryError(ValueError):
    """A query the server would reject; the message names the offending part."""


@dataclass(frozen=True)
class Filter:
    attribute: str  # lower-case PI point attribute name (aliases resolved)
    operator: str  # "=", "<>", "<", "<=", ">", ">="
    pattern: str  # as typed, escapes resolved into `regex`
    regex: re.Pattern[str]

    def matches(self, attributes: Callable[[str], object]) -> bool:
        actual = attributes(self.attribute)
        if self.operator in ("=", "<>"):
            hit = bool(self.regex.fullmatch(str(actual)))
            return hit if self.operator == "=" else not hit
        try:  # as numbers when both are (12, 12.0 and "12" alike), else as upper-case text (None is "NONE")
            numbers = float(str(actual)), float(self.pattern)
        except ValueError:
            return _ordered(self.operator, str(actual).upper(), self.pattern.upper())
        return _ordered(self.operator, *numbers)


_Ordered = TypeVar("_Ordered", float, str)


def _ordered(operator: str, left: _Ordered, right: _Ordered) -> bool:
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[operator]


def parse_query(query: str) -> list[list[Filter]]:
    """The query as OR-ed groups of AND-ed filters; an empty query is one empty group (all points)."""
    groups: list[list[Filter]] = [[]]
    for token in _tokens(query):
        if token == ("OR",):
            groups.append([])
        elif token != ("AND",):
            groups[-1].append(_filter(*token))
    if any(not group for group in groups) and len(groups) > 1:
        raise QueryError(f"The query '{query}' has an empty condition next to OR.")
    return groups


def _tokens(query: str) -> list[tuple[str, ...]]:
    """Split into (text, regex) filter tokens and ("AND",)/("OR",) keywords, honouring quotes/escapes."""
    tokens: list[tuple[str, ...]] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace() or c in "()":
            i += 1
            continue
        text, regex = [], []
        quote = None
        while i < n and (quote or not (query[i].isspace() or query[i] in "()")):
            c = query[i]
            if c == "\\" and i + 1 < n:
                text.append(query[i + 1])
                regex.append(re.escape(query[i + 1]))
                i += 2
                continue
            if quote and c == quote:
                quote = None
            elif not quote and c in "'\"" and text and text[-1] in ":=<>":
                quote = c
            elif c == "*":
                text.append(c)
                regex.append(".*")
            elif c == "?":
                text.append(c)
                regex.append(".")
            else:
                text.append(c)
                regex.append(re.escape(c))
            i += 1
        if quote:
            raise QueryError(f"The query '{query}' has an unclosed quote.")
        word = "".join(text)
        tokens.append((word.upper(),) if word.upper() in ("AND", "OR") else (word, "".join(regex)))
    return tokens


def _filter(text: str, regex: str) -> Filter:
    """One `Attribute<op>Value` (or bare value) token into a Filter."""
    for operator in _OPERATORS:
        position = text.find(operator)
        if position > 0 and ":" not in text[:position]:
            break
    else:
        return Filter("tag", "=", text, re.compile(regex, re.IGNORECASE | re.DOTALL))
    name = text[:position].strip().lower()
    value = text[position + len(operator) :]
    # the regex of the value: drop the escaped name and operator from the front of the token's regex
    prefix = "".join(re.escape(ch) for ch in text[: position + len(operator)])
    if not regex.startswith(prefix):
        raise QueryError(f"Cannot parse the query filter '{text}'.")
    if name in VALUE_FILTERS:
        raise QueryError(f"The query filter '{text}' filters on values, which the simulator does not support.")
    attribute = ALIASES.get(name, name)
    op = operator[1:] or "="
    return Filter(attribute, op, value, re.compile(regex[len(prefix) :], re.IGNORECASE | re.DOTALL))
