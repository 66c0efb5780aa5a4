"""Every public module, function, class, method and property of the packages has a docstring.

Walks `workbench`, `analysis`, `circuits` and `kernels` (imports each module), skipping the
deprecated alias modules (docstring "Deprecated alias ..."), `__main__` modules (importing
runs them), the dashboard pages (Dash
layouts and callbacks, no public API; they register with a running app) and, for now, the zoo
and the tasks (see `SKIPPED_PREFIXES`). A member counts when
it is defined in the module (or, for methods and properties, in the class itself) and its
name does not start with `_`. Methods may inherit the docstring of the method they override
(`inspect.getdoc`), as `Result.to_frame` implementations do.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
import warnings
from types import ModuleType

import pytest

PACKAGES = ("workbench", "analysis", "circuits", "kernels")
# The dashboard pages; and the zoo and the tasks, whose docstrings are owed by the engineer
# rewriting them in this pass (issue 17 item 7 follow-up: drop them from this list).
SKIPPED_PREFIXES = ("workbench.ui.pages", "workbench.zoo", "workbench.tasks")


def _module_names() -> list[str]:
    names = []
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        names.append(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if not info.name.startswith(SKIPPED_PREFIXES) and not info.name.endswith("__main__"):
                names.append(info.name)
    return sorted(names)


def _import(name: str) -> ModuleType | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == "triton":  # the Triton backend is optional
                return None
            raise


def _has_doc(obj: object) -> bool:
    doc = inspect.getdoc(obj)
    return bool(doc and doc.strip())


def _class_members(cls: type) -> list[tuple[str, object]]:
    members = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, staticmethod | classmethod):
            members.append((name, value.__func__))
        elif isinstance(value, property | functools.cached_property):
            members.append((name, value))
        elif inspect.isfunction(value):
            members.append((name, getattr(cls, name)))
    return members


def _undocumented(module: ModuleType) -> list[str]:
    missing = [] if _has_doc(module) else ["<module docstring>"]
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj) and not _has_doc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            if not (obj.__doc__ or "").strip():
                missing.append(name)
            for member, value in _class_members(obj):
                if not _has_doc(value):
                    missing.append(f"{name}.{member}")
    return missing


def _is_alias(module: ModuleType) -> bool:
    return (module.__doc__ or "").startswith("Deprecated alias")


MODULES = _module_names()


def test_the_walk_finds_the_packages():
    assert len(MODULES) > 50
    assert {"workbench.results", "analysis.statistics.head_stats", "circuits.circuit"} <= set(
        MODULES
    )


@pytest.mark.parametrize("name", MODULES)
def test_public_members_have_docstrings(name):
    module = _import(name)
    if module is None:
        pytest.skip(f"{name} needs triton")
    if _is_alias(module):
        return
    missing = _undocumented(module)
    assert not missing, f"{name}: no docstring on {', '.join(missing)}"


def test_the_check_sees_a_missing_docstring():
    module = ModuleType("workbench.fake", "A module.")
    exec(
        "import functools\nclass Shown:\n    '''Doc.'''\n    @property\n    def bare(self):\n"
        "        return 1\n    @functools.cached_property\n    def cached(self):\n        return 3\n"
        "def naked():\n    return 2\n",
        module.__dict__,
    )
    assert _undocumented(module) == ["Shown.bare", "Shown.cached", "naked"]
