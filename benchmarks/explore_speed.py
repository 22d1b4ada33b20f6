"""How long `simcse-lab explore` takes, stage by stage, how big its page is, and how fast a browser opens it.

1. The command, timed from its start to the written page (Python start and model load included), on the
   default encoder with 2,000 sentences of wiki1m_head (plus STS-B dev's 2,909 for the headline numbers when
   the data is there): the wall time and the command's own per-stage times.
2. The page's size for one, two and three models on the same sentences (by default the default encoder
   with three poolers; pass --models for others, e.g. trained output dirs).
3. With Chromium and playwright: the page opened in headless Chromium (software WebGL), seconds to the
   first drawn figure and to every figure, and the time a hover on a corpus map and a click on the replay's
   slider (when there is one) take to show, for each page of step 2.

    SIMCSE_LAB_DATA=../shared/data python benchmarks/explore_speed.py
    SIMCSE_LAB_DATA=../shared/data python benchmarks/explore_speed.py --models outputs/unsup-simcse outputs/sup-simcse data/models/bert-mini-mlm
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("SIMCSE_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def sentences_file(folder: Path, n: int) -> Path:
    data = os.environ.get("SIMCSE_LAB_DATA")
    wiki = Path(data) / "wiki" / "wiki1m_head.txt" if data else None
    if wiki is None or not wiki.is_file():
        sys.exit("set SIMCSE_LAB_DATA to the data folder (wiki/wiki1m_head.txt gives the sentences)")
    lines = [line for line in wiki.read_text(encoding="utf8").splitlines() if line.strip()][:n]
    path = folder / f"wiki{n}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_explore(models: list[str], poolers: list[str] | None, sentences: Path, output: Path) -> tuple[float, str]:
    command = [sys.executable, "-m", "simcse_lab", "explore", *models, "--sentences", str(sentences), "--output", str(output), "--no_progress"]
    if poolers:
        command += ["--pooler", *poolers]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"explore failed: {done.stderr[-2000:]}")
    return wall, done.stdout.strip().splitlines()[-1]


def stages(line: str) -> list[tuple[str, float]]:
    return [(name.strip(), float(value)) for name, value in re.findall(r"(?:: | · )([a-zA-Z ()&.-]+?) ([0-9.]+)s", line.split(" in ", 1)[1])]


def browser_times(page: Path) -> dict:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        started = time.perf_counter()
        tab.goto(page.as_uri(), wait_until="load", timeout=300_000)
        tab.wait_for_function("() => document.querySelector('.plot[data-rendered]')", timeout=300_000)
        first = time.perf_counter() - started
        tab.wait_for_function("() => document.body.getAttribute('data-all-rendered') === '1'", timeout=600_000)
        everything = time.perf_counter() - started
        tab.locator("#map-0").scroll_into_view_if_needed()
        point = tab.evaluate("""() => { const gd = document.getElementById('map-0'), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const t = gd._fullData[0], box = gd.getBoundingClientRect();
            return {x: box.left + xa._offset + xa.l2p(t.x[0]), y: box.top + ya._offset + ya.l2p(t.y[0])}; }""")
        started = time.perf_counter()
        tab.mouse.move(point["x"], point["y"])
        tab.wait_for_function("() => document.querySelector('#map-0 .hoverlayer .hovertext')", timeout=60_000)
        hover = time.perf_counter() - started
        slider = None
        if tab.locator("#replay-0").count():
            tab.locator("#replay-0").scroll_into_view_if_needed()
            rail = tab.locator("#replay-0 .slider-rail-rect").bounding_box()
            steps = tab.evaluate("() => document.getElementById('replay-0').layout.sliders[0].steps.length")
            started = time.perf_counter()
            tab.mouse.click(rail["x"] + rail["width"] - 2, rail["y"] + rail["height"] / 2)
            tab.wait_for_function(f"() => document.getElementById('replay-0').layout.sliders[0].active === {steps - 1}", timeout=60_000)
            tab.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            slider = time.perf_counter() - started
        browser.close()
    return {"first": first, "all": everything, "hover": hover, "slider": slider}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--models", nargs="+", help="three models for the size and browser rows (default: the default encoder, three poolers)")
    parser.add_argument("--no_browser", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from simcse_lab.paths import DEFAULT_MODEL  # noqa: PLC0415

    work = Path(tempfile.mkdtemp(prefix="explore-speed-"))
    sentences = sentences_file(work, args.sentences)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    wall, line = run_explore([DEFAULT_MODEL], None, sentences, work / "one.html")
    print(f"\n`simcse-lab explore <default encoder> --sentences wiki{args.sentences}.txt`: {wall:.1f}s wall, command start to written page\n")
    print("| stage | seconds |\n|---|---:|")
    for name, seconds in stages(line):
        print(f"| {name} | {seconds:.1f} |")
    print(f"| whole command (wall, Python start included) | {wall:.1f} |")

    models = args.models or [DEFAULT_MODEL] * 3
    poolers = None if args.models else ["avg", "cls_before_pooler", "avg_first_last"]
    pages = []
    for n in (1, 2, 3):
        page = work / f"models{n}.html"
        seconds, _ = run_explore(models[:n], poolers[:n] if poolers else None, sentences, page)
        pages.append((n, page, seconds))
    browser = not args.no_browser and Path(CHROMIUM).exists()
    print(f"\n| models | page size (MB) | explore wall (s) |" + (" browser: first figure (s) | all figures (s) | hover (s) | slider (s) |" if browser else ""))
    print("|---:|---:|---:|" + ("---:|---:|---:|---:|" if browser else ""))
    for n, page, seconds in pages:
        row = f"| {n} | {page.stat().st_size / 2**20:.2f} | {seconds:.1f} |"
        if browser:
            t = browser_times(page)
            slider = "-" if t["slider"] is None else f"{t['slider']:.2f}"
            row += f" {t['first']:.2f} | {t['all']:.2f} | {t['hover']:.2f} | {slider} |"
        print(row)
    print(f"\nload average now {os.getloadavg()[0]:.1f}; pages in {work}")


if __name__ == "__main__":
    main()
