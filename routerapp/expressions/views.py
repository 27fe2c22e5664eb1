"""Read-only views of JSON-like data for expressions: `plain_view`.

`plain_view(response)` wraps nested dicts and lists (e.g. an OpenAI ChatCompletion's
`model_dump()`) so that expressions read them the way the Kalibr SDK users write them:
`response.choices[0].message.content` and `response["choices"][0]["message"]["content"]`
both work. Wrapping is lazy (a child is wrapped when it is read), so viewing a large response
costs nothing up front.

The views are deliberately bare: apart from dunder methods they have no attributes, so every
public name is a field of the data (a response field called `items` or `get` is reachable) and
nothing callable leaks into an expression. A missing field or index raises `ExpressionError`
naming the path that was being read ("response.choices[0].message has no field 'contnt'"),
because silently answering None would turn a typo into a permanent failure outcome.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn

from routerapp.expressions.errors import ExpressionError

DEFAULT_LABEL = "value"


def plain_view(data: Any, *, label: str = DEFAULT_LABEL) -> Any:
    """Wrap mappings and lists/tuples in read-only views; scalars are returned unchanged.

    `label` names the value in error messages; an existing view is re-labelled, not re-wrapped.
    Objects with `model_dump()` (pydantic models such as the openai SDK's) are dumped first.

    >>> view = plain_view({"choices": [{"finish_reason": "stop"}]}, label="response")
    >>> view.choices[0].finish_reason, view["choices"][0]["finish_reason"]
    ('stop', 'stop')
    """
    if isinstance(data, _View):
        return type(data)(object.__getattribute__(data, "_data"), label)
    if isinstance(data, Mapping):
        return MappingView(data, label)
    if isinstance(data, (list, tuple)):
        return ListView(data, label)
    model_dump = getattr(type(data), "model_dump", None)
    if callable(model_dump):
        return plain_view(data.model_dump(), label=label)
    return data


def unwrap(value: Any) -> Any:
    """The data behind a view (the value itself for anything else)."""
    if isinstance(value, _View):
        return object.__getattribute__(value, "_data")
    return value


def view_label(value: Any) -> str | None:
    if isinstance(value, _View):
        return str(object.__getattribute__(value, "_label"))
    return None


def read_field(value: Any, name: str) -> Any:
    """`value.name` as the evaluator performs it: only views have fields."""
    if isinstance(value, MappingView):
        return value.__getattr__(name)
    if isinstance(value, ListView):
        raise ExpressionError(f"{view_label(value)} is a list; it has no field '{name}'")
    raise ExpressionError(f"cannot read field '{name}' of {describe(value)}")


def describe(value: Any) -> str:
    """A short, bounded description of a value for error messages."""
    label = view_label(value)
    if label is not None:
        return label
    if value is None:
        return "None"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


class _View:
    __slots__ = ("_data", "_label")

    def __init__(self, data: Any, label: str) -> None:
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "_label", label)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("expression views are read-only")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("expression views are read-only")

    def __reduce__(self) -> tuple[Any, ...]:
        # copy and pickle would otherwise restore the slots through the refused __setattr__.
        data = object.__getattribute__(self, "_data")
        return (type(self), (data, object.__getattribute__(self, "_label")))

    def __len__(self) -> int:
        return len(object.__getattribute__(self, "_data"))

    def __eq__(self, other: object) -> bool:
        return bool(object.__getattribute__(self, "_data") == unwrap(other))

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    # Views mirror dicts and lists, which are unhashable too.
    __hash__ = None  # type: ignore[assignment]  # typeshed types __hash__ as a method only

    def __repr__(self) -> str:
        return repr(object.__getattribute__(self, "_data"))


class MappingView(_View):
    """A read-only dict: `view.key`, `view["key"]`, `"key" in view`, `len(view)`."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not real attributes. Private names stay invisible so
        # copy/pickle/introspection probes get the AttributeError they expect.
        if name.startswith("_"):
            raise AttributeError(name)
        data = object.__getattribute__(self, "_data")
        label = object.__getattribute__(self, "_label")
        try:
            value = data[name]
        except KeyError:
            raise ExpressionError(f"{label} has no field '{name}'") from None
        return plain_view(value, label=f"{label}.{name}")

    def __getitem__(self, key: Any) -> Any:
        data = object.__getattribute__(self, "_data")
        label = object.__getattribute__(self, "_label")
        key = unwrap(key)
        try:
            value = data[key]
        except (KeyError, TypeError):
            raise ExpressionError(f"{label} has no key {key!r}") from None
        return plain_view(value, label=f"{label}[{key!r}]")

    def __contains__(self, key: object) -> bool:
        try:
            return unwrap(key) in object.__getattribute__(self, "_data")
        except TypeError:  # an unhashable key cannot be a key
            return False

    def __iter__(self) -> Iterator[Any]:
        return iter(object.__getattribute__(self, "_data"))


class ListView(_View):
    """A read-only list: `view[0]`, `view[-1]`, `view[1:3]`, `x in view`, `len(view)`."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        label = object.__getattribute__(self, "_label")
        raise ExpressionError(f"{label} is a list; it has no field '{name}'")

    def __getitem__(self, index: Any) -> Any:
        data: Sequence[Any] = object.__getattribute__(self, "_data")
        label = object.__getattribute__(self, "_label")
        index = unwrap(index)
        if isinstance(index, slice):
            return ListView(data[index], f"{label}[{_slice_text(index)}]")
        if not isinstance(index, int):
            raise ExpressionError(f"{label} is a list; its index must be an integer, not {index!r}")
        try:
            value = data[index]
        except IndexError:
            raise ExpressionError(
                f"{label} has no item [{index}] (it has {len(data)} item"
                f"{'' if len(data) == 1 else 's'})"
            ) from None
        return plain_view(value, label=f"{label}[{index}]")

    def __contains__(self, item: object) -> bool:
        return unwrap(item) in object.__getattribute__(self, "_data")

    def __iter__(self) -> Iterator[Any]:
        label = object.__getattribute__(self, "_label")
        for position, item in enumerate(object.__getattribute__(self, "_data")):
            yield plain_view(item, label=f"{label}[{position}]")


def _slice_text(index: slice) -> str:
    parts = ["" if part is None else str(part) for part in (index.start, index.stop, index.step)]
    return ":".join(parts[:2]) if index.step is None else ":".join(parts)
