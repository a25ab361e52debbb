"""The layers stay light and one-way (as click's tests/test_imports.py keeps click light).

x12 -> model -> ig, ncci, codesets -> rules -> emit, ledger -> api, core and the front
ends: a module imports only from its own layer and the layers below it, so a reader
that only wants segments or claims never loads lxml, sqlite3 or click.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "scrubber"
HEAVY = ("lxml", "sqlite3", "click")

#: top-level part of scrubber -> layer; a module may import its own layer and lower ones
LAYERS = {
    "paths": 0, "x12": 0, "cache": 0, "files": 0, "cmsfiles": 0,
    "model": 1, "problems": 1,  # the table of the problem codes model and ig produce
    "ig": 2, "ncci": 2, "codesets": 2, "pfs": 2, "providers": 2, "diagnoses": 2,
    "rules": 3,
    "emit": 4, "ledger": 4,
}
FRONT = 5  # api, core, cli, watch, config, serve, spark ... and the package facade itself


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], FRONT) if len(parts) > 1 else FRONT


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every scrubber import in a file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] == "scrubber"]


@pytest.mark.parametrize("module", ["scrubber.x12", "scrubber.x12.tokenizer", "scrubber.model",
                                    "scrubber.paths"])
def test_low_layers_load_no_heavy_library(module):
    code = (f"import sys, json; import {module}; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
            "or m in ('scrubber.api', 'scrubber.rules', 'scrubber.ig'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert json.loads(out.stdout) == []


def test_the_package_facade_loads_the_api_on_first_use():
    code = ("import sys; import scrubber; light = 'scrubber.api' not in sys.modules; "
            "from scrubber import scrub, ScrubResult, Severity; "
            "print(light, callable(scrub), scrubber.ScrubResult is ScrubResult, "
            "Severity.__name__, sorted(set(scrubber.__all__) - set(dir(scrubber))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["True", "True", "True", "Severity", "[]"]


def test_unknown_public_name_is_an_attribute_error():
    import scrubber

    with pytest.raises(AttributeError, match="no_such_name"):
        _ = scrubber.no_such_name


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts[:-1] if relative.name == "__init__" else relative.parts)
        if module == "scrubber":
            continue  # the facade names the API lazily, by design
        own = _layer(module)
        for line, imported in _imports(path):
            if _layer(imported) > own:
                upward.append(f"{relative}.py:{line}: {module} (layer {own}) imports "
                              f"{imported} (layer {_layer(imported)})")
    assert upward == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check itself must be able to fail: a lower layer importing the facade."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    import scrubber\n    from scrubber.api import scrub\n")
    assert [name for _, name in _imports(bad)] == ["scrubber", "scrubber.api"]
    assert _layer("scrubber.x12.tokenizer") < _layer("scrubber") == _layer("scrubber.api")
