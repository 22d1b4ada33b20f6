"""`simcse-lab course`: execute the notebook course and export it (executed notebooks, HTML, figures).

    from simcse_lab.course import run_course
    run_course("outputs/course", mode="quick")      # or: simcse-lab course --quick --output_dir outputs/course

Modes (each notebook's `parameters` cell reads them from the environment):
- smoke: tiny sizes, every cell runs in seconds to a minute (what CI and tests/test_notebooks.py run);
- quick: small sizes, minutes per notebook on a laptop CPU, with the embedded default encoder;
- medium: BERT-base from the hub, a few thousand steps (notebooks 02 and 03): minutes on a GPU;
- full:  paper scale (bert-base-uncased, wiki1m / nli_for_simcse from the hub, paper batch sizes and
         learning rates): meant for a GPU with internet.

What lands in output_dir:
    NN_name.ipynb           the executed notebooks (open them with `jupyter lab <output_dir>`)
    NN_name.html            static HTML exports (plotly figures inlined, widgets as saved state)
    figures/NN_name/*.png   every plotly figure the notebook displayed, as PNG (for slides) and SVG
                            (standalone .html if no static exporter works: plotly's kaleido needs a
                            Chrome/Chromium, which it finds on the PATH or at BROWSER_PATH)
    outputs/                what the notebooks write: trained models (outputs/unsup-simcse, ...)
                            and tables; notebooks 03 and 04 find 02's model there
    timings.json            seconds per notebook

The notebooks run with output_dir as the working directory, in a kernel of the Python running this
function (not whatever `python3` kernelspec Jupyter would pick), with SIMCSE_LAB_SMOKE /
SIMCSE_LAB_QUICK, SIMCSE_LAB_OUTPUT and SIMCSE_LAB_DATA (passed through) set.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import SimCSELabError, unknown_choice

NOTEBOOKS = ("01_anisotropy.ipynb", "02_unsupervised_simcse.ipynb", "03_supervised_simcse.ipynb", "04_geometry_explorer.ipynb",
             "05_beyond_simcse.ipynb")
MODES = ("smoke", "quick", "medium", "full")
FIGURE_FORMATS = ("png+svg", "png", "svg", "html", "none")
NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
# Cell timeout per mode, seconds (None = no limit: full-mode training cells run for hours).
CELL_TIMEOUT = {"smoke": 600, "quick": 3600, "medium": None, "full": None}


# Seconds per notebook and mode on the project's 2-core CPU, as `run_course(..., record_timings=True)` measured them;
# each notebook's header shows its line (`measured_times`).
TIMINGS_FILE = NOTEBOOK_DIR / "timings.json"


def measured_times(notebook: str, timings_file: Path = TIMINGS_FILE) -> str:
    """One Markdown line: how long `notebook` ("01", a stem or a file name) took in each recorded mode."""
    stem = notebook_paths([notebook], timings_file.parent)[0].name
    recorded = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    parts = [f"{mode} mode {format_duration(runs[stem])}" for mode, runs in recorded.get("modes", {}).items() if stem in runs]
    if not parts:
        return "**Time:** not measured yet on this machine (`simcse-lab course --quick --record_timings` measures it)."
    where = recorded.get("machine", "the project's machine")
    return f"**Time** (measured {recorded.get('date', '')} on {where}): " + "; ".join(parts) + "."


def format_duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


@dataclass
class NotebookRun:
    name: str
    seconds: float
    executed: Path
    html: Path | None = None
    figures: list[Path] = field(default_factory=list)
    figure_format: str = "none"  # what export_figures wrote: "png+svg", "png", "html", "none"
    error: str | None = None


@dataclass
class CourseResult:
    output_dir: Path
    mode: str
    runs: list[NotebookRun]

    @property
    def ok(self) -> bool:
        return all(run.error is None for run in self.runs)


def notebook_paths(only: Sequence[str] | None = None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks in order; `only` selects by file name, stem or number prefix ("02")."""
    if not notebook_dir.is_dir():
        raise SimCSELabError(f"the course notebooks are not in {notebook_dir}; run from a checkout of the simcse_lab repository")
    if not only:
        return [notebook_dir / name for name in NOTEBOOKS]
    chosen = []
    for wanted in only:
        stem = Path(wanted).name.removesuffix(".ipynb").removesuffix(".py")
        matches = [name for name in NOTEBOOKS if name.removesuffix(".ipynb") == stem or name.split("_")[0] == stem]
        if not matches:
            raise unknown_choice("notebook", wanted, NOTEBOOKS)
        chosen.append(notebook_dir / matches[0])
    return chosen


def course_environment(mode: str, output_dir: Path) -> dict[str, str]:
    """The kernel's environment: ours plus the mode switches and where outputs go."""
    env = dict(os.environ)
    env.pop("SIMCSE_LAB_SMOKE", None)
    env.pop("SIMCSE_LAB_QUICK", None)
    env.pop("SIMCSE_LAB_MEDIUM", None)
    if mode in ("smoke", "quick", "medium"):
        env[f"SIMCSE_LAB_{mode.upper()}"] = "1"
    env["SIMCSE_LAB_OUTPUT"] = str(output_dir / "outputs")
    if env.get("SIMCSE_LAB_DATA"):  # the kernel runs in output_dir: a relative data path must not move with it
        env["SIMCSE_LAB_DATA"] = str(Path(env["SIMCSE_LAB_DATA"]).expanduser().resolve())
    # mimetype only: JupyterLab renders the figure from its JSON, and the executed notebook holds nothing else
    # (export_html draws the same JSON for the HTML copy; an HTML renderer here would store every figure twice
    # and plotly.js once more, megabytes per notebook)
    env.setdefault("PLOTLY_RENDERER", "plotly_mimetype")
    env.setdefault("TQDM_DISABLE", "1")  # progress bars would fill the saved outputs
    env.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no load report each time an MLM checkpoint is loaded as an encoder
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def current_python_kernel_manager():
    """A KernelManager that starts ipykernel with this very Python (sys.executable), and whose clients
    wait for messages in short polls (`repolling_kernel_client`)."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager  # noqa: PLC0415
    from jupyter_client.manager import AsyncKernelManager  # noqa: PLC0415

    spec = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                      display_name=f"Python ({sys.executable})", language="python")

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return spec

    manager = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ThisPython())
    manager.client_factory = repolling_kernel_client()
    return manager


# The longest a message that has arrived can go unnoticed (seconds): see repolling_channel.
POLL_SLICE_S = 1.0


def repolling_channel():
    """jupyter_client's asyncio channel, waiting in polls of POLL_SLICE_S up to the caller's timeout.

    A zmq.asyncio poll can miss the wake-up of a message that is already on the socket (the socket's
    file descriptor is edge-triggered, and a send on the same socket can consume the edge; cf.
    ipython/ipykernel#1529, jupyter/nbclient#312). The wait then lasts the whole timeout: in CI a smoke
    notebook stopped for exactly its 600 s cell timeout after a cell with an ipywidgets `interact`,
    kernel and client both idle, and went on when the poll's final check found the reply. Each poll
    here ends with that check, so a missed wake-up costs at most POLL_SLICE_S."""
    from queue import Empty  # noqa: PLC0415

    from jupyter_client.channels import AsyncZMQSocketChannel  # noqa: PLC0415

    class RepollingChannel(AsyncZMQSocketChannel):
        async def get_msg(self, timeout: float | None = None):
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                left = POLL_SLICE_S if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    return await super().get_msg(timeout=min(POLL_SLICE_S, left))
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

    return RepollingChannel


def repolling_kernel_client():
    """AsyncKernelClient whose shell and iopub channels are `repolling_channel`s."""
    from jupyter_client.asynchronous import AsyncKernelClient  # noqa: PLC0415
    from traitlets import Type  # noqa: PLC0415

    channel = repolling_channel()

    class RepollingKernelClient(AsyncKernelClient):
        shell_channel_class = Type(channel)
        iopub_channel_class = Type(channel)

    return RepollingKernelClient


def execute_notebook(source: Path, target: Path, env: dict[str, str], cwd: Path, timeout: int | None):
    """Run source in a fresh kernel, write the executed copy to target; returns (notebook, error or None)."""
    import nbformat  # noqa: PLC0415
    from nbclient import NotebookClient  # noqa: PLC0415
    from nbclient.exceptions import CellExecutionError  # noqa: PLC0415

    notebook = nbformat.read(source, as_version=4)
    # store_widget_state stays on while running (nbclient's Output-widget support, which `interact` uses, needs it) ...
    client = NotebookClient(notebook, km=current_python_kernel_manager(), timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}}, record_timing=True, store_widget_state=True)
    error = None
    try:
        client.execute(env=env, cwd=str(cwd), cleanup_kc=True)  # we made the kernel manager: shut it down
    except CellExecutionError as exc:
        error = str(exc)
    except Exception as exc:  # a dead kernel, a timeout: still save what ran
        error = f"{type(exc).__name__}: {exc}"
    # ... but is not saved: a live figure widget's state is its whole data again, megabytes per widget; every notebook
    # shows a static figure beside its widgets, and that is what the HTML export keeps
    notebook.metadata.pop("widgets", None)
    nbformat.write(notebook, target)
    return notebook, error


def export_html(notebook, target: Path) -> Path:
    """A self-contained HTML copy: each plotly figure drawn from the JSON the notebook saved, plotly.js inlined
    once in the page (it opens offline)."""
    import copy  # noqa: PLC0415

    import plotly.io as pio  # noqa: PLC0415
    from nbconvert import HTMLExporter  # noqa: PLC0415
    from plotly.offline import get_plotlyjs  # noqa: PLC0415

    notebook = copy.deepcopy(notebook)
    drawn = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            spec = output.get("data", {}).get(PLOTLY_MIME)
            if spec and "text/html" not in output["data"]:
                output["data"]["text/html"] = pio.to_html(spec, include_plotlyjs=False, full_html=False)
                drawn += 1
    body, _ = HTMLExporter().from_notebook_node(notebook)
    if drawn:
        body = body.replace("</head>", f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head>', 1)
    target.write_text(body, encoding="utf8")
    return target


def notebook_figures(notebook) -> list:
    """Every plotly figure displayed by the notebook's cells, in order."""
    import plotly.graph_objects as go  # noqa: PLC0415

    figures = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            spec = output.get("data", {}).get(PLOTLY_MIME)
            if spec:
                figures.append(go.Figure(spec))
    return figures


def figure_name(index: int, figure) -> str:
    title = figure.layout.title.text or "figure"
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"<[^>]+>.*", "", title).lower()).strip("-")[:60] or "figure"
    return f"{index:02d}-{slug}"


# Said once when no static figure can be written: what the user can do about it.
NO_STATIC_EXPORT = ("static figures (PNG, SVG) need a Chrome or Chromium for plotly's kaleido: install one (Debian/Ubuntu: "
                    "apt install chromium; elsewhere run plotly_get_chrome) or point BROWSER_PATH at it; writing interactive "
                    "HTML figures instead")


def export_figures(notebook, folder: Path, formats: Sequence[str] = ("png", "svg")) -> tuple[list[Path], str]:
    """Write each figure in the static formats asked for (kaleido drives a Chrome/Chromium), or as standalone HTML
    when there are none or that fails. Returns the paths and the format written ("png+svg", "html", ...)."""
    figures = notebook_figures(notebook)
    if not figures:
        return [], "none"
    folder.mkdir(parents=True, exist_ok=True)
    names = [figure_name(i + 1, f) for i, f in enumerate(figures)]
    if formats:
        try:
            import plotly.io as pio  # noqa: PLC0415

            paths = []
            for suffix in formats:
                wanted, scale = [folder / f"{name}.{suffix}" for name in names], 2 if suffix == "png" else 1
                pio.write_images(figures, wanted, scale=scale)
                # kaleido returns a figure's failure (a render timeout on a busy machine, say) instead of raising it,
                # so a file can be missing after a call that "succeeded": retry those once, then fall back to HTML
                missing = [k for k, path in enumerate(wanted) if not path.is_file()]
                if missing:
                    pio.write_images([figures[k] for k in missing], [wanted[k] for k in missing], scale=scale)
                for k, path in enumerate(wanted):
                    if not path.is_file():
                        path = path.with_suffix(".html")
                        figures[k].write_html(str(path), include_plotlyjs="cdn")
                        print(f"  figure {names[k]}: kaleido wrote no {suffix} twice; wrote {path.name} instead")
                    paths.append(path)
            return paths, "+".join(formats)
        except Exception as exc:  # no kaleido, no Chrome, a sandbox that forbids it, ...
            detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            print(f"  {NO_STATIC_EXPORT} ({type(exc).__name__}: {detail})")
    paths = []
    for name, figure in zip(names, figures):
        path = folder / f"{name}.html"
        figure.write_html(str(path), include_plotlyjs="cdn")
        paths.append(path)
    return paths, "html"


def run_course(output_dir: str | os.PathLike = "outputs/course", mode: str = "quick", only: Sequence[str] | None = None,
               figures: str = "png+svg", stop_on_error: bool = True, notebook_dir: str | os.PathLike | None = None,
               record_timings: bool = False) -> CourseResult:
    """Execute the course notebooks in order and export them to output_dir (see the module docstring).

    figures: "png+svg" (static images for slides; HTML if that fails), "png", "svg", "html" (standalone interactive
    files) or "none".
    stop_on_error: stop at the first notebook that fails (later ones may need its outputs) and raise
    SimCSELabError naming it; the executed copy up to the failing cell is still written.
    record_timings: write the notebooks' times into notebooks/timings.json (what their headers show).
    """
    if mode not in MODES:
        raise unknown_choice("course mode", mode, MODES)
    if figures not in FIGURE_FORMATS:
        raise unknown_choice("figure format", figures, FIGURE_FORMATS)
    sources = notebook_paths(only, Path(notebook_dir) if notebook_dir else NOTEBOOK_DIR)
    output_dir = Path(output_dir).expanduser().resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    env = course_environment(mode, output_dir)
    print(f"simcse_lab course · {mode} mode · {len(sources)} notebook(s) → {output_dir}")
    runs: list[NotebookRun] = []
    for source in sources:
        print(f"▶ {source.name} …", flush=True)
        started = time.perf_counter()
        executed = output_dir / source.name
        notebook, error = execute_notebook(source, executed, env, output_dir, CELL_TIMEOUT[mode])
        run = NotebookRun(source.name, time.perf_counter() - started, executed, error=error)
        run.html = export_html(notebook, executed.with_suffix(".html"))
        kind = "none"
        if figures != "none":
            static = () if figures == "html" else tuple(figures.split("+"))
            run.figures, kind = export_figures(notebook, output_dir / "figures" / source.stem, static)
        run.figure_format = kind
        runs.append(run)
        status = "FAILED" if error else "ok"
        print(f"  {status} in {run.seconds:.0f}s · {len(run.figures)} figure(s) ({kind})", flush=True)
        if error and stop_on_error:
            break
    result = CourseResult(output_dir, mode, runs)
    (output_dir / "timings.json").write_text(json.dumps({r.name: round(r.seconds, 1) for r in runs}, indent=2) + "\n")
    if record_timings and not any(r.error for r in runs):
        record(runs, mode, Path(notebook_dir) if notebook_dir else NOTEBOOK_DIR)
    print(summary(result))
    failed = [r for r in runs if r.error]
    if failed:
        first = failed[0]
        raise SimCSELabError(f"{first.name} failed; the executed copy up to the failing cell is {first.executed}\n{last_lines(first.error)}")
    return result


def record(runs: Sequence[NotebookRun], mode: str, notebook_dir: Path) -> None:
    """Merge these runs' seconds into notebook_dir/timings.json, with the date and this machine's CPU."""
    path = notebook_dir / TIMINGS_FILE.name
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    recorded.setdefault("modes", {}).setdefault(mode, {}).update({r.name: round(r.seconds) for r in runs})
    recorded["date"] = time.strftime("%Y-%m-%d")
    recorded["machine"] = f"{os.cpu_count()} CPU cores ({cpu_model()})"
    path.write_text(json.dumps(recorded, indent=2) + "\n")


def cpu_model() -> str:
    try:
        line = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name"))
        return line.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        import platform  # noqa: PLC0415

        return platform.processor() or platform.machine()


def write_clean_notebooks(notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """Regenerate each course .ipynb from its py:percent source (jupytext), with no outputs: what is committed.
    Cell ids of the existing .ipynb are kept where the cells line up, so an unchanged notebook stays unchanged."""
    import jupytext  # noqa: PLC0415
    import nbformat  # noqa: PLC0415

    written = []
    for name in NOTEBOOKS:
        source, target = Path(notebook_dir) / name.replace(".ipynb", ".py"), Path(notebook_dir) / name
        if not source.is_file():
            continue
        notebook = jupytext.read(source)
        if target.is_file():
            for new, old in zip(notebook.cells, nbformat.read(target, as_version=4).cells):
                if "id" in old and new.cell_type == old.cell_type:
                    new["id"] = old["id"]
        jupytext.write(notebook, target)
        written.append(target)
    return written


def last_lines(text: str, n: int = 25) -> str:
    """The end of an error report, without the terminal colour codes of IPython tracebacks."""
    return "\n".join(re.sub(r"\x1b\[[0-9;]*m", "", text).strip().splitlines()[-n:])


def summary(result: CourseResult) -> str:
    width = max((len(r.name) for r in result.runs), default=10)
    lines = ["", "notebook".ljust(width) + "   seconds"]
    lines += [f"{r.name.ljust(width)}   {r.seconds:7.0f}{'   FAILED' if r.error else ''}" for r in result.runs]
    lines.append(f"{'total'.ljust(width)}   {sum(r.seconds for r in result.runs):7.0f}")
    out = result.output_dir
    lines += ["", f"executed notebooks: {out}/NN_*.ipynb", f"HTML exports:       {out}/NN_*.html",
              f"figures:            {out}/figures/", f"models and tables:  {out}/outputs/",
              f"open the course in JupyterLab:  jupyter lab {out}"]
    return "\n".join(lines)
