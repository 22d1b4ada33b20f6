"""The notebook course: committed notebooks are clean and in sync with their py:percent sources, and
every notebook runs top to bottom in smoke mode (SIMCSE_LAB_SMOKE=1) through `run_course`.

Regenerate the committed .ipynb files from the .py sources (outputs stripped) with
`python -c "from simcse_lab.commands.course import write_clean_notebooks; write_clean_notebooks()"`.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import shutil
import time
from pathlib import Path
from queue import Empty

import pytest

from simcse_lab.commands.course import NOTEBOOK_DIR, NOTEBOOKS, run_course
from simcse_lab.paths import DEFAULT_MODEL

SMOKE_BUDGET_S = 300  # per notebook on a 2-core machine; smoke mode should be far below it
# Saved widget state, bytes: each plotly FigureWidget keeps its own copy of plotly.js (5 MB) in it, so notebook 04 shows
# plain figures and its one app draws into an Output widget (it saved 41 MB of widget state with four FigureWidget apps).
WIDGET_STATE_BUDGET = {"04_geometry_explorer.ipynb": 1_000_000}


def load(name: str) -> dict:
    return json.loads((NOTEBOOK_DIR / name).read_text(encoding="utf8"))


def code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs(name):
    for cell in code_cells(load(name)):
        assert cell.get("outputs") == [], f"{name}: a code cell has saved outputs; commit notebooks stripped"
        assert cell.get("execution_count") is None, f"{name}: a code cell has an execution count; commit notebooks stripped"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_code_cell_is_the_parameters_cell(name):
    first = code_cells(load(name))[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), f"{name}: the first code cell must be tagged 'parameters'"
    text = source(first)
    assert 'os.environ.get("SIMCSE_LAB_SMOKE") == "1"' in text, f"{name}: the parameters cell must read SIMCSE_LAB_SMOKE"
    assert "MODEL" in text, f"{name}: the parameters cell must set MODEL"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_ipynb_matches_its_py_percent_source(name):
    jupytext = pytest.importorskip("jupytext")
    paired = NOTEBOOK_DIR / name.replace(".ipynb", ".py")
    if not paired.is_file():
        pytest.skip(f"{paired.name} is not there")
    from_py = [(c.cell_type, c.source) for c in jupytext.read(paired).cells]
    from_ipynb = [(c["cell_type"], source(c)) for c in load(name)["cells"]]
    assert from_py == from_ipynb, f"{name} and {paired.name} differ; regenerate the .ipynb (see this module's docstring)"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_code_cell_compiles_on_this_python(name):
    """A syntax error (for example an f-string nesting that only Python 3.12 accepts) fails here in a second,
    not twenty minutes into the smoke run. IPython magics and shell lines are blanked first."""
    for index, cell in enumerate(code_cells(load(name))):
        lines = [("" if line.lstrip().startswith(("%", "!")) else line) for line in source(cell).splitlines()]
        try:
            compile("\n".join(lines), f"{name} code cell {index}", "exec")
        except SyntaxError as error:
            pytest.fail(f"{name}: code cell {index} does not compile: {error}")


# Numbers a takeaway may spell out: names (STS12-16, Table 5, Figure 2, §3.2, notebook 02, STS-B, N x 2N, 3-D) and
# the zero of "far from 0"; every measured figure must come from a variable.
NAMES_WITH_DIGITS = re.compile(r"STS\d+(-\d+)?|Table \d+|Figure[- ]\d+|§\s?\d+(\.\d+)*|notebook \d+|\b0[1-5]\b|N ?[x×] ?2N"
                               r"|\d+-D\b|[A-Za-z]+\d+[A-Za-z]*|\bx ?100\b|\bthe 0 of\b")


def takeaway_cells(notebook: dict) -> list[dict]:
    """The cells of the notebook's "## Takeaways" section, up to the next "## " heading."""
    cells = notebook["cells"]
    start = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and "## Takeaways" in source(c)), None)
    if start is None:
        return []
    section = [cells[start]]
    for cell in cells[start + 1:]:
        if cell["cell_type"] == "markdown" and re.search(r"^## ", source(cell), re.M):
            break
        section.append(cell)
    return section


def literal_texts(cell: dict) -> list[str]:
    """The text a cell writes itself: a markdown cell's source; a code cell's string literals (f-strings' literal
    parts), not their format specs (".2f") and not what the formatted variables hold."""
    if cell["cell_type"] == "markdown":
        return [source(cell)]
    tree = ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source(cell).splitlines()))
    specs = {id(part) for node in ast.walk(tree) if isinstance(node, ast.FormattedValue) and node.format_spec is not None
             for part in node.format_spec.values}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in specs]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_takeaways_take_every_figure_from_the_run(name):
    """A takeaway that writes a number by hand can contradict the cells above it; formatted from the run's
    variables, it cannot. (The smoke run executes these cells, so a variable that does not exist fails there.)"""
    section = takeaway_cells(load(name))
    assert section, f"{name} has no '## Takeaways' section"
    hand_written = [text for cell in section for text in literal_texts(cell) if re.search(r"\d", NAMES_WITH_DIGITS.sub("", text))]
    assert not hand_written, f"{name}: takeaway text with a number written by hand (format it from the run): {hand_written[:3]}"


@pytest.fixture(scope="module")
def course_dir(tmp_path_factory):
    if not os.environ.get("SIMCSE_LAB_DATA") or not Path(os.environ["SIMCSE_LAB_DATA"]).is_dir():
        pytest.skip("set SIMCSE_LAB_DATA to the data directory (for example ../shared/data) to run the notebooks")
    if not (Path(DEFAULT_MODEL) / "config.json").is_file() and not os.environ.get("SIMCSE_LAB_MODEL"):
        pytest.skip(f"the default encoder is not built ({DEFAULT_MODEL}); the notebooks need it")
    return tmp_path_factory.mktemp("course")


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a hung kernel fails this test with stack traces instead of stalling CI
@pytest.mark.parametrize("name", NOTEBOOKS)  # in course order: 03 and 04 reuse 02's model when it is there
def test_notebook_runs_in_smoke_mode(name, course_dir):
    started = time.perf_counter()
    result = run_course(course_dir, mode="smoke", only=[name], figures="png")
    seconds = time.perf_counter() - started
    (run,) = result.runs
    assert run.error is None
    executed = json.loads(run.executed.read_text(encoding="utf8"))
    errors = [o for c in code_cells(executed) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name}: error outputs {errors[:1]}"
    assert all(c.get("execution_count") for c in code_cells(executed)), f"{name}: not every code cell ran"
    assert run.html is not None and run.html.stat().st_size > 0
    widget_state = len(json.dumps(executed.get("metadata", {}).get("widgets", {})))
    assert widget_state <= WIDGET_STATE_BUDGET.get(name, float("inf")), f"{name} saved {widget_state:,} bytes of widget state"
    assert all(path.is_file() for path in run.figures)
    if run.figure_format != "none" and (shutil.which("chromium") or shutil.which("google-chrome")):
        # kaleido finds the browser: a teacher's slides get PNGs, not HTML
        assert run.figure_format == "png" and all(p.suffix == ".png" for p in run.figures), run.figure_format
    assert run.executed.stat().st_size < 3_000_000, f"{name}: the executed notebook is {run.executed.stat().st_size:,} bytes"
    print(f"{name}: {seconds:.0f}s in smoke mode")
    assert seconds < SMOKE_BUDGET_S * 2, f"{name} took {seconds:.0f}s in smoke mode (budget {SMOKE_BUDGET_S}s); keep smoke sizes tiny"


# --------------------------------------------------------------------------- the kernel client's polling


def fake_channel(monkeypatch, ready_on_call: int | None):
    """A repolling channel over a base get_msg that sleeps out each timeout it is given and has a message
    only from call number ready_on_call on (None: never), as a poll that missed its wake-up would."""
    import asyncio

    from jupyter_client.channels import AsyncZMQSocketChannel

    from simcse_lab.commands import course

    timeouts = []

    async def base_get_msg(self, timeout=None):
        timeouts.append(timeout)
        if ready_on_call is not None and len(timeouts) >= ready_on_call:
            return {"msg_type": "execute_reply"}
        await asyncio.sleep(timeout)
        raise Empty

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", base_get_msg)
    monkeypatch.setattr(course, "POLL_SLICE_S", 0.01)
    channel_class = course.repolling_channel()
    return channel_class.__new__(channel_class), timeouts  # get_msg needs no socket here


def test_a_message_a_poll_missed_is_found_within_one_slice_not_at_the_timeout(monkeypatch):
    channel, timeouts = fake_channel(monkeypatch, ready_on_call=3)
    started = time.monotonic()
    message = asyncio.run(channel.get_msg(timeout=600))
    assert message == {"msg_type": "execute_reply"}
    assert len(timeouts) == 3 and max(timeouts) <= 0.01
    assert time.monotonic() - started < 5


def test_repolling_still_times_out_and_waits_forever_without_a_timeout(monkeypatch):
    channel, timeouts = fake_channel(monkeypatch, ready_on_call=None)
    started = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(channel.get_msg(timeout=0.05))
    assert 0.05 <= time.monotonic() - started < 2
    assert all(t <= 0.01 for t in timeouts)
    with pytest.raises(asyncio.TimeoutError):  # timeout=None polls on, slice after slice, until cancelled
        asyncio.run(asyncio.wait_for(channel.get_msg(timeout=None), 0.1))


def test_course_kernels_get_repolling_shell_and_iopub_channels():
    from jupyter_client.channels import AsyncZMQSocketChannel

    from simcse_lab.commands.course import current_python_kernel_manager

    client = current_python_kernel_manager().client_factory()
    for channel_class in (client.shell_channel_class, client.iopub_channel_class):
        assert issubclass(channel_class, AsyncZMQSocketChannel) and channel_class.__name__ == "RepollingChannel"
