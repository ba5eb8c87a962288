"""The Python examples of README.md, docs/ and examples/ run as they stand.

`tools/docs_examples.py` finds them (its rules are in docs/testing.md, "The
examples in these pages"); `make docs-examples` type-checks them with
``mypy --strict``; this file runs each runnable one in its own interpreter,
with no network beyond this machine and no sleeping, and tests the finding
rules themselves.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import pytest

from multichannel import ManualClock
from multichannel.dispatch import EventKind, EventKindName

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_examples", ROOT / "tools/docs_examples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


tool = _tool()
try:
    FOUND = tool.collect(ROOT)
    PROBLEM = None
except tool.ExampleError as err:
    FOUND = tool.Collection(examples=[], sketches=[])
    PROBLEM = str(err)
RUNNABLE = FOUND.runnable


def test_the_pages_follow_the_example_rules() -> None:
    assert PROBLEM is None
    assert RUNNABLE, "no runnable example was found: has the extraction broken?"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Any:
    """Every selected example, run once for the whole module (a few at a time)."""
    folder = tmp_path_factory.mktemp("docs-examples")
    tool.write(FOUND.examples, folder)
    selected = {
        item.callspec.params["example"].module
        for item in request.session.items
        if hasattr(item, "callspec") and "example" in item.callspec.params
    }
    return tool.run_all([example for example in RUNNABLE if example.module in selected], folder)


@pytest.mark.parametrize("example", RUNNABLE, ids=[example.where for example in RUNNABLE])
def test_the_example_runs(example: Any, outcomes: dict[str, Any]) -> None:
    outcome = outcomes[example.module]

    assert outcome.ok, (
        f"{example.where} ({example.runner} {example.module}) "
        f"ended with status {outcome.status}:\n{outcome.output}"
    )


PAGE = """\
# A page

```python
print("one")
```

<!-- example: continues -->
```py
print("two")
```

<!-- example: sketch (a fragment) -->
```python
send(...)
```

<!-- example: no-run (needs credentials) -->

```python title="shop.py"
import os
KEY = os.environ["KEY"]
```

```python title="test_shop.py"
def test_nothing() -> None:
    pass
```

````markdown
```python
print("inside another fence: not an example")
```
````

- a list item:

  ```python
  print("indented")
  ```

```text
print("not python")
```
"""


def _page(text: str = PAGE) -> Any:
    return tool.assemble(tool.blocks_in_markdown(text, "docs/a-page.md"))


def test_blocks_are_found_with_their_markers() -> None:
    found = _page()

    assert [example.module for example in found.examples] == [
        "docs_a_page_4.py",
        "shop.py",
        "test_shop.py",
        "docs_a_page_38.py",
    ]
    assert [block.where for block in found.sketches] == ["docs/a-page.md:14"]
    assert [example.module for example in found.runnable] == [
        "docs_a_page_4.py",
        "test_shop.py",
        "docs_a_page_38.py",
    ]


def test_a_continued_block_joins_the_module_before_it() -> None:
    first = _page().examples[0]

    assert first.code == 'print("one")\nprint("two")\n'
    assert (first.source_line(1), first.source_line(2)) == ("docs/a-page.md:4", "docs/a-page.md:9")


def test_an_indented_block_loses_its_indent() -> None:
    assert _page().examples[-1].code == 'print("indented")\n'


def test_titled_blocks_keep_their_names_and_tests_run_under_pytest() -> None:
    examples = {example.module: example for example in _page().examples}

    assert examples["test_shop.py"].runner == "pytest"
    assert examples["shop.py"].runner == "script"
    assert not examples["shop.py"].runnable


def test_mypy_findings_point_at_the_page() -> None:
    found = _page()
    output = (
        'docs_a_page_4.py:2: error: Name "x" is not defined  [name-defined]\n'
        "elsewhere.py:1: error: unrelated"
    )

    assert tool.relocate(output, found.examples).splitlines() == [
        'docs/a-page.md:9: error: Name "x" is not defined  [name-defined]',
        "elsewhere.py:1: error: unrelated",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<!-- example: skecth -->\n```python\nx = 1\n```\n", "unknown example marker 'skecth'"),
        ("<!-- example: sketch, no-run -->\n```python\nx = 1\n```\n", "mark it sketch alone"),
        ("<!-- example: continues -->\n```python\nx = 1\n```\n", "no checked block comes before"),
        ("<!-- example sketch -->\n```python\nx = 1\n```\n", "malformed marker"),
        (
            '```python title="a.py"\nx = 1\n```\n\n```python title="a.py"\nx = 2\n```\n',
            "module a.py is also written by docs/a-page.md:2",
        ),
        ('```python title="my file.py"\nx = 1\n```\n', "is not a Python module name"),
    ],
)
def test_a_page_that_breaks_the_rules_is_refused(text: str, message: str) -> None:
    with pytest.raises(tool.ExampleError, match=message):
        _page(text)


def test_a_file_under_examples_is_a_module_with_an_optional_marker() -> None:
    block = tool.blocks_in_script("# example: no-run (needs a server)\nx = 1\n", "examples/a.py")

    assert (block.title, block.flags) == ("a.py", frozenset({"no-run"}))
    with pytest.raises(tool.ExampleError, match="a module of its own"):
        tool.blocks_in_script("# example: continues\n", "examples/b.py")


GUARDED = {
    "reaches_a_name": (
        "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=5)\n",
        "may not reach 'example.com'",
    ),
    "reaches_an_address": (
        "import socket\nsocket.create_connection(('192.0.2.1', 80), timeout=5)\n",
        "may not reach '192.0.2.1'",
    ),
    # A dispatcher handles a refused connection as a provider's failure: still a failure.
    "handles_the_refusal": (
        "import socket\ntry:\n    socket.getaddrinfo('api.twilio.com', 443)\n"
        "except OSError:\n    pass\n",
        "tried to reach ['api.twilio.com']",
    ),
    "sleeps": ("import time\ntime.sleep(30)\n", "give the dispatcher a ManualClock"),
    "reads_a_secret": (
        "import os\nassert 'TWILIO_AUTH_TOKEN' not in os.environ, 'a secret leaked in'\n",
        None,
    ),
    "reaches_this_machine": (
        "import socket\nserver = socket.create_server(('127.0.0.1', 0))\n"
        "socket.create_connection(server.getsockname(), timeout=5).close()\n",
        None,
    ),
}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The outcomes of the examples in GUARDED, run with a secret in the environment."""
    folder = tmp_path_factory.mktemp("guarded")
    examples = [
        tool.Example(module=f"{name}.py", blocks=[tool.Block("t.md", 1, code)])
        for name, (code, _) in GUARDED.items()
    ]
    tool.write(examples, folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TWILIO_AUTH_TOKEN", "secret-from-the-machine")
        return tool.run_all(examples, folder)


@pytest.mark.parametrize("name", sorted(GUARDED))
def test_an_example_reaches_only_this_machine_never_sleeps_and_sees_no_secret(
    name: str, guarded: dict[str, Any]
) -> None:
    outcome = guarded[f"{name}.py"]
    message = GUARDED[name][1]

    if message is None:
        assert outcome.ok, outcome.output
    else:
        assert not outcome.ok
        assert message in outcome.output


def test_event_kind_names_are_the_enum_values() -> None:
    assert set(get_args(EventKindName)) == {kind.value for kind in EventKind}


def test_manual_clock_set_takes_next_action_at_and_refuses_none_with_the_reason() -> None:
    clock = ManualClock(datetime(2026, 3, 2, 14, 0, tzinfo=UTC))

    with pytest.raises(ValueError, match=r"given None: the dispatch has nothing due"):
        clock.set(None)
    assert clock.now() == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
