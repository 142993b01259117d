"""The public API as the reference documents it: docs/hooks.py's PUBLIC (what the mkdocs build
checks), walked down to every public method and property, each named once by the public class
that defines it (or, for what a class inherits from a private base, by the first public class
that has it)."""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = ROOT / "docs"


def docs_hooks() -> ModuleType:
    """docs/hooks.py, imported as the mkdocs build imports it."""
    sys.path.insert(0, str(DOCS))
    try:
        return importlib.import_module("hooks")
    finally:
        sys.path.remove(str(DOCS))


@dataclass(frozen=True)
class PublicName:
    """A public class, function, method or property."""

    name: str  # bayeux.client.Client.publish
    obj: Any  # the class, the function, or the property
    doc: str | None  # its docstring as the reference shows it (inherited by an override)
    source: Any  # the object whose own __doc__ that is (so a shared one runs once)

    @property
    def code(self) -> Any:
        """What has the signature: the class, the function, or the property's getter."""
        return self.obj.fget if isinstance(self.obj, property) else self.obj

    @property
    def module(self) -> str:
        """The module whose source defines it."""
        return str(inspect.unwrap(self.code).__module__)


def _own_doc(obj: Any) -> str | None:
    doc = obj.__doc__
    # A dataclass without a docstring gets its signature as one: that documents nothing.
    if doc is None or (inspect.isclass(obj) and doc.startswith(f"{obj.__name__}(")):
        return None
    return inspect.cleandoc(doc)


def _documented_by(cls: type, member: str) -> tuple[str | None, Any]:
    """The docstring `cls.member` shows and the object that holds it: the member's own, or
    that of the first class in the MRO defining the member with one (as inspect.getdoc)."""
    for klass in cls.__mro__:
        value = vars(klass).get(member)
        if value is None:
            continue
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if value.__doc__:
            return inspect.cleandoc(value.__doc__), value
    return None, None


def _members(cls: type) -> dict[str, Any]:
    """The public functions and properties of `cls`, its own and those it inherits from the
    package's classes (the most derived definition of each)."""
    inherited = [k for k in cls.__mro__ if k.__module__.startswith("bayeux")]
    found = {}
    for klass in reversed(inherited):
        for member, value in vars(klass).items():
            if member.startswith("_"):
                continue
            function = value.__func__ if isinstance(value, staticmethod | classmethod) else value
            if isinstance(function, property) or inspect.isfunction(function):
                found[member] = function
            else:
                found.pop(member, None)  # a plain attribute hides what a base defined
    return found


def public_names() -> list[PublicName]:
    """Every public class and function, then every public method and property, once."""
    objects = docs_hooks().public_objects()
    names: list[PublicName] = []
    seen: set[int] = set()
    for name, obj in objects:
        names.append(PublicName(name, obj, _own_doc(obj), obj))
    classes = [(name, obj) for name, obj in objects if inspect.isclass(obj)]
    # First what each public class defines itself, then what it inherits from private bases.
    for own in (True, False):
        for class_name, cls in classes:
            for member, function in _members(cls).items():
                if id(function) in seen or (own and member not in vars(cls)):
                    continue
                seen.add(id(function))
                doc, source = _documented_by(cls, member)
                names.append(PublicName(f"{class_name}.{member}", function, doc, source))
    return names
