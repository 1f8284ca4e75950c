"""ComfyUI's core string, math and switch nodes, resolved while importing.

Their inputs are widget values, or links to other such nodes and to primitives
(``PrimitiveString``, ``PrimitiveInt``, the front end's ``PrimitiveNode``, ...), so in
the workflows ComfyUI's templates use, every value is known before anything runs: the
import computes them, as ComfyUI's nodes would (``comfy_extras/nodes_string.py``,
``nodes_logic.py``, ``nodes_math.py``), and gives the result as a constant to whatever
widget reads it. No block of ours is needed for them; nothing of theirs appears in the
graph. ``ComfySwitchNode`` passes on the value of the input its boolean picks, of any
type (a latent, a model, a prompt).

A value that is *not* known at import (an input linked to something other than these
nodes) cannot be computed here: the node is reported (``dropped_node``, naming the
input) rather than guessed. Regular expressions run with a time limit, so a hostile
pattern cannot stall an import.

>>> from graphs.comfy import import_workflow
>>> prompt = {
...   "1": {"class_type": "PrimitiveString", "inputs": {"value": "a red fox"}},
...   "2": {"class_type": "StringConcatenate", "inputs": {"string_a": ["1", 0], "string_b": "in the snow",
...                                                      "delimiter": ", "}},
...   "3": {"class_type": "StringReplace", "inputs": {"string": ["2", 0], "find": "red", "replace": "white"}},
...   "9": {"class_type": "ComfyMathExpression", "inputs": {"expression": "a * 2 + b", "values.a": 256,
...                                                        "values.b": ["10", 0]}},
...   "10": {"class_type": "PrimitiveInt", "inputs": {"value": 64}},
...   "5": {"class_type": "ShowText", "inputs": {"text": ["3", 0], "width": ["9", 0]}}}
>>> show = {"class_type": "ShowText", "block": "text.show", "params": {"text": "text", "width": "width"},
...         "output_node": True}  # a plugin's mapping of a node that reads them
>>> graph, problems = import_workflow(prompt, extra_mappings=[show])
>>> graph.nodes["show_text_5"].params
{'text': 'a white fox, in the snow', 'width': 576}
>>> problems
[]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from graphs.comfy.mapping import ComfyMapping, Const, NodeContext, Unresolved, value_type

REGEX_TIMEOUT_S = 1.0  # one regular expression
REGEX_BUDGET_S = 2.0  # every regular expression of one import together
MAX_STRING = 1_000_000  # characters of a string a node computes (a chain of doublings stops here)
MAX_EXPRESSION = 2000  # characters of a math expression
_MISSING = object()


def value(nc: NodeContext, name: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
    """Input or widget ``name`` as a constant of ``kind``; :class:`Unresolved` when not known at import."""
    link = nc.node.link(name)
    if link is not None:
        got = nc.importer.resolve(link[0], link[1], None, field=name)
        if not isinstance(got, Const):
            raise Unresolved(f"input {name!r} is {value_type(got) or 'a value'} known only when the workflow "
                             "runs; this node is computed at import and needs a constant", field=name)
        out = got.value
    elif name in nc.node.inputs:
        out = nc.node.inputs[name]
    elif default is not _MISSING:
        out = default
    else:
        raise Unresolved(f"input {name!r} is not set", field=name)
    if kind is float and isinstance(out, int) and not isinstance(out, bool):
        out = float(out)
    if not isinstance(out, kind) or (kind in (int, float) and isinstance(out, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise Unresolved(f"input {name!r} is {str(out)[:80]!r}, not of type {names}", field=name)
    return out


# -- strings (comfy_extras/nodes_string.py) -------------------------------------------------------


def _s(nc: NodeContext, name: str, default: Any = _MISSING) -> str:
    return value(nc, name, str, default)


def _b(nc: NodeContext, name: str, default: bool) -> bool:
    return value(nc, name, bool, default)


def _string(fn: Callable[[NodeContext], Any], kind: str = "STRING") -> Callable[[NodeContext], list[Any]]:
    def convert(nc: NodeContext) -> list[Any]:
        out = fn(nc)
        if isinstance(out, str):
            _fits(len(out))
        return [Const(kind, out)]

    return convert


def _fits(length: int) -> None:
    if length > MAX_STRING:
        raise Unresolved(f"its result would be {length} characters, over the {MAX_STRING} an imported "
                         "string may have", field="string")


def replace(nc: NodeContext) -> str:
    text, find, repl = _s(nc, "string"), _s(nc, "find"), _s(nc, "replace")
    count = text.count(find) if find else len(text) + 1
    _fits(len(text) + count * (len(repl) - len(find)))  # before building it
    return text.replace(find, repl)


def concatenate(nc: NodeContext) -> str:
    a, b, delimiter = _s(nc, "string_a"), _s(nc, "string_b"), _s(nc, "delimiter", "")
    _fits(len(a) + len(b) + len(delimiter))
    return delimiter.join((a, b))


def substring(nc: NodeContext) -> str:
    return _s(nc, "string")[value(nc, "start", int):value(nc, "end", int)]


def case(nc: NodeContext) -> str:
    text, mode = _s(nc, "string"), _s(nc, "mode", "UPPERCASE")
    ops = {"UPPERCASE": str.upper, "lowercase": str.lower, "Capitalize": str.capitalize,
           "Title Case": str.title}
    return ops[mode](text) if mode in ops else text


def trim(nc: NodeContext) -> str:
    text, mode = _s(nc, "string"), _s(nc, "mode", "Both")
    ops = {"Both": str.strip, "Left": str.lstrip, "Right": str.rstrip}
    return ops[mode](text) if mode in ops else text


def contains(nc: NodeContext) -> bool:
    text, sub = _s(nc, "string"), _s(nc, "substring")
    if _b(nc, "case_sensitive", True):
        return sub in text
    return sub.lower() in text.lower()


def compare(nc: NodeContext) -> bool:
    a, b = _s(nc, "string_a"), _s(nc, "string_b")
    if not _b(nc, "case_sensitive", True):
        a, b = a.lower(), b.lower()
    mode = _s(nc, "mode", "Equal")
    if mode == "Starts With":
        return a.startswith(b)
    if mode == "Ends With":
        return a.endswith(b)
    if mode == "Equal":
        return a == b
    raise Unresolved(f"mode {mode!r} is not one of 'Starts With', 'Ends With', 'Equal'", field="mode")


def _flags(nc: NodeContext) -> int:
    import regex

    flags = 0
    if _b(nc, "case_insensitive", True):
        flags |= regex.IGNORECASE
    if _b(nc, "multiline", False):
        flags |= regex.MULTILINE
    if _b(nc, "dotall", False):
        flags |= regex.DOTALL
    return flags


def _regex(nc: NodeContext, run: Callable[[Any, float], Any], on_error: Any) -> Any:
    """``run(regex module, time limit)``: a bad pattern gives ``on_error`` (as ComfyUI does), a slow one an
    error; all of one import's regular expressions share :data:`REGEX_BUDGET_S`."""
    import time

    import regex

    spent = getattr(nc.importer, "regex_seconds", 0.0)
    left = REGEX_BUDGET_S - spent
    if left <= 0:
        raise Unresolved(f"the regular expressions of this workflow took over {REGEX_BUDGET_S:g} s in all; "
                         "this one is not evaluated", field="regex_pattern")
    start = time.monotonic()
    limit = min(REGEX_TIMEOUT_S, left)
    timed_out = False
    try:
        return run(regex, limit)
    except TimeoutError:
        timed_out = True
        raise Unresolved(f"the regular expression took over {limit:g} s on this text; "
                         "it is not evaluated", field="regex_pattern") from None
    except (regex.error, IndexError) as exc:
        if on_error is _MISSING:
            raise Unresolved(f"regex_pattern is not a valid regular expression: {exc}",
                             field="regex_pattern") from None
        return on_error
    finally:
        # a time-out is charged its whole limit: the regex module may stop a hair early, and the
        # budget must not be left with a sliver that lets the next pattern start
        used = time.monotonic() - start
        nc.importer.regex_seconds = spent + (max(used, limit) if timed_out else used)


def regex_match(nc: NodeContext) -> bool:
    text, pattern, flags = _s(nc, "string"), _s(nc, "regex_pattern"), _flags(nc)
    return _regex(nc, lambda rx, limit: rx.search(pattern, text, flags, timeout=limit) is not None, False)


def regex_extract(nc: NodeContext) -> str:
    text, pattern, flags = _s(nc, "string"), _s(nc, "regex_pattern"), _flags(nc)
    mode, group = _s(nc, "mode", "First Match"), value(nc, "group_index", int, 1)

    def run(rx: Any, limit: float) -> str:
        if mode == "First Match":
            m = rx.search(pattern, text, flags, timeout=limit)
            return m.group(0) if m else ""
        if mode == "All Matches":
            found = rx.findall(pattern, text, flags, timeout=limit)
            return "\n".join(f[0] if isinstance(f, tuple) else f for f in found)
        if mode == "First Group":
            m = rx.search(pattern, text, flags, timeout=limit)
            return m.group(group) if m and len(m.groups()) >= group else ""
        if mode == "All Groups":
            found = rx.finditer(pattern, text, flags, timeout=limit)
            return "\n".join(m.group(group) for m in found if m.groups() and len(m.groups()) >= group)
        return ""

    return _regex(nc, run, "")


def regex_replace(nc: NodeContext) -> str:
    text, pattern, repl, flags = _s(nc, "string"), _s(nc, "regex_pattern"), _s(nc, "replace"), _flags(nc)
    count = value(nc, "count", int, 0)
    if (len(text) + 1) * (len(repl) + 1) > 50 * MAX_STRING:  # each match's replacement may repeat the text
        raise Unresolved(f"a {len(repl)}-character replacement over {len(text)} characters could exceed "
                         f"{MAX_STRING} characters; it is not evaluated", field="replace")
    return _regex(nc, lambda rx, limit: rx.sub(pattern, repl, text, count=count, flags=flags, timeout=limit),
                  _MISSING)


# -- switch (comfy_extras/nodes_logic.py) ----------------------------------------------------------


def switch(nc: NodeContext) -> list[Any]:
    on = value(nc, "switch", bool, False)
    linked = {n: nc.node.link(n) for n in ("on_true", "on_false")}
    if linked["on_true"] is None and linked["on_false"] is None:
        raise Unresolved("at least one of on_false or on_true must be connected", field="on_true")
    name = "on_true" if on else "on_false"
    if linked[name] is None:  # ComfyUI passes on the one that is connected
        name = "on_false" if on else "on_true"
    src, slot = linked[name]  # type: ignore[misc]
    return [nc.importer.resolve(src, slot, None, field=name)]


# -- math (comfy_extras/nodes_math.py: ComfyMathExpression, JSONata) ------------------------------


def math_expression(nc: NodeContext) -> list[Any]:
    expression = _s(nc, "expression", "a + b")
    names: dict[str, Any] = {}
    for key in nc.node.inputs:
        short = key.split(".", 1)[1] if key.startswith("values.") else key
        if len(short) == 1 and "a" <= short <= "z":
            names[short] = value(nc, key, (int, float))
    try:
        result = evaluate(expression, names)
    except ExpressionError as exc:
        raise Unresolved(f"expression {expression[:200]!r}: {exc}", field="expression") from None
    integral = all(isinstance(v, int) for v in names.values())
    if integral and float(result).is_integer() and abs(result) <= 2**63 - 1:  # bigger: a float, as JSONata
        return [Const("INT", int(result))]
    return [Const("FLOAT", float(result))]


class ExpressionError(ValueError):
    """A math expression that this evaluator cannot or may not compute."""


_FUNCTIONS: dict[str, Callable[..., float]] = {
    "abs": abs, "floor": math.floor, "ceil": math.ceil, "sqrt": math.sqrt, "power": math.pow,
    "min": min, "max": max, "sum": lambda *v: math.fsum(v), "average": lambda *v: math.fsum(v) / len(v),
    "number": float, "round": lambda x, p=0: round(x, int(p)) if p else round(x),
}


def evaluate(expression: str, names: dict[str, float]) -> float:
    """The JSONata arithmetic ComfyUI's Math Expression node uses: numbers, ``a``..``z``, ``values[i]``,
    ``+ - * / %``, comparisons, ``and``/``or``, ``c ? x : y`` and ``$abs $floor $ceil $round $sqrt
    $power $min $max $sum $average $number``.

    >>> evaluate("(a + b) * 2 / c", {"a": 1, "b": 2, "c": 4})
    1.5
    >>> evaluate("$max(a, 10) > 5 ? $round(2.5) : -1", {"a": 3})
    2
    """
    if len(expression) > MAX_EXPRESSION:
        raise ExpressionError(f"longer than {MAX_EXPRESSION} characters")
    parser = _Parser(expression, names)
    out = parser.ternary()
    if parser.peek() is not None:
        raise ExpressionError(f"unexpected {parser.peek()!r}")
    if isinstance(out, bool) or not isinstance(out, (int, float)) or not math.isfinite(out):
        raise ExpressionError(f"the result {out!r} is not a finite number")
    return out


class _Parser:
    OPS = ("<=", ">=", "!=", "+", "-", "*", "/", "%", "(", ")", ",", "<", ">", "=", "?", ":", "[", "]")

    def __init__(self, text: str, names: dict[str, float]) -> None:
        self.tokens = self._tokens(text)
        self.pos = 0
        self.names = names
        self.depth = 0

    @classmethod
    def _tokens(cls, text: str) -> list[Any]:
        out: list[Any] = []
        i = 0
        while i < len(text):
            c = text[i]
            if c.isspace():
                i += 1
            elif c.isdigit() or (c == "." and i + 1 < len(text) and text[i + 1].isdigit()):
                j = i
                while j < len(text) and (text[j].isdigit() or text[j] in ".eE" or
                                         (text[j] in "+-" and text[j - 1] in "eE")):
                    j += 1
                try:
                    out.append(float(text[i:j]) if any(ch in text[i:j] for ch in ".eE") else int(text[i:j]))
                except ValueError:
                    raise ExpressionError(f"bad number {text[i:j]!r}") from None
                i = j
            elif c.isalpha() or c in "$_":
                j = i + 1
                while j < len(text) and (text[j].isalnum() or text[j] == "_"):
                    j += 1
                out.append(("name", text[i:j]))
                i = j
            else:
                op = next((o for o in cls.OPS if text.startswith(o, i)), None)
                if op is None:
                    raise ExpressionError(f"unexpected character {c!r}")
                out.append(op)
                i += len(op)
        return out

    def peek(self) -> Any:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, want: Any = None) -> Any:
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise ExpressionError(f"expected {want!r}" if want else "unexpected end")
        self.pos += 1
        return tok

    def ternary(self) -> Any:
        self.depth += 1
        if self.depth > 100:
            raise ExpressionError("nested too deeply")
        cond = self.logic()
        if self.peek() == "?":
            self.take()
            yes = self.ternary()
            self.take(":")
            no = self.ternary()
            cond = yes if cond else no
        self.depth -= 1
        return cond

    def logic(self) -> Any:
        left = self.compare()
        while self.peek() in (("name", "and"), ("name", "or")):
            op = self.take()[1]
            right = self.compare()
            left = (bool(left) and bool(right)) if op == "and" else (bool(left) or bool(right))
        return left

    def compare(self) -> Any:
        left = self.sum()
        ops = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
               "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
        while self.peek() in ops:
            op = self.take()
            left = ops[op](left, self.sum())
        return left

    def sum(self) -> Any:
        left = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.product()
            left = left + right if op == "+" else left - right
        return left

    def product(self) -> Any:
        left = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = self.take()
            right = self.unary()
            if op != "*" and right == 0:
                raise ExpressionError("division by zero")
            left = left * right if op == "*" else (left / right if op == "/" else math.fmod(left, right))
        return left

    def unary(self) -> Any:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        return self.atom()

    def atom(self) -> Any:
        tok = self.take()
        if isinstance(tok, (int, float)):
            return tok
        if tok == "(":
            out = self.ternary()
            self.take(")")
            return out
        if isinstance(tok, tuple):
            name = tok[1]
            if name.startswith("$"):
                return self.call(name[1:])
            if name in ("true", "false"):
                return name == "true"
            if name == "values" and self.peek() == "[":
                self.take()
                index = self.ternary()
                self.take("]")
                items = [self.names[k] for k in sorted(self.names)]
                if not isinstance(index, int) or not -len(items) <= index < len(items):
                    raise ExpressionError(f"values[{index}] is out of range")
                return items[index]
            if name not in self.names:
                raise ExpressionError(f"{name!r} is not an input of the node")
            return self.names[name]
        raise ExpressionError(f"unexpected {tok!r}")

    def call(self, name: str) -> Any:
        fn = _FUNCTIONS.get(name)
        if fn is None:
            raise ExpressionError(f"function ${name} is not supported (supported: "
                                  f"{', '.join('$' + f for f in sorted(_FUNCTIONS))})")
        self.take("(")
        args = []
        while self.peek() != ")":
            args.append(self.ternary())
            if self.peek() != ")":
                self.take(",")
        self.take(")")
        try:
            return fn(*args)
        except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
            raise ExpressionError(f"${name}{tuple(args)}: {exc}") from None


def _m(class_type: str, fn: Callable[[NodeContext], list[Any]], widgets: tuple[str, ...],
       **defaults: Any) -> ComfyMapping:
    return ComfyMapping(class_type, convert=fn, requires=(), widgets=widgets, defaults=defaults)


def constant(kind: str) -> Callable[[NodeContext], list[Any]]:
    """``PrimitiveInt``/``Float``/``String``/``Boolean``: their ``value``, for the widgets they feed."""
    return lambda nc: [Const(kind, nc.widget("value"))]


PRIMITIVE_MAPPINGS: tuple[ComfyMapping, ...] = (
    ComfyMapping("PrimitiveInt", convert=constant("INT"), requires=()),
    ComfyMapping("PrimitiveFloat", convert=constant("FLOAT"), requires=()),
    ComfyMapping("PrimitiveString", convert=constant("STRING"), requires=()),
    ComfyMapping("PrimitiveStringMultiline", convert=constant("STRING"), requires=()),
    ComfyMapping("PrimitiveBoolean", convert=constant("BOOLEAN"), requires=()),
    _m("StringConcatenate", _string(concatenate), ("string_a", "string_b", "delimiter"), delimiter=""),
    _m("StringSubstring", _string(substring), ("string", "start", "end")),
    _m("StringLength", _string(lambda nc: len(_s(nc, "string")), "INT"), ("string",)),
    _m("CaseConverter", _string(case), ("string", "mode")),
    _m("StringTrim", _string(trim), ("string", "mode")),
    _m("StringReplace", _string(replace), ("string", "find", "replace")),
    _m("StringContains", _string(contains, "BOOLEAN"), ("string", "substring", "case_sensitive")),
    _m("StringCompare", _string(compare, "BOOLEAN"), ("string_a", "string_b", "mode", "case_sensitive")),
    _m("RegexMatch", _string(regex_match, "BOOLEAN"),
       ("string", "regex_pattern", "case_insensitive", "multiline", "dotall")),
    _m("RegexExtract", _string(regex_extract),
       ("string", "regex_pattern", "mode", "case_insensitive", "multiline", "dotall", "group_index")),
    _m("RegexReplace", _string(regex_replace),
       ("string", "regex_pattern", "replace", "case_insensitive", "multiline", "dotall", "count")),
    _m("ComfySwitchNode", switch, ("switch",)),
    _m("ComfyMathExpression", math_expression, ("expression",)),
)
