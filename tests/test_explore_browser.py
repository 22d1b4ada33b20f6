"""The `simcse-lab explore` page in a real browser (headless Chromium, as tests/test_browser.py drives JupyterLab).

Three models (one trained here, so it has a training replay) on the same sentences: the page loads with
every outside request refused, draws every figure, answers a hover, lists neighbours on a click and on a
search, moves the replay when its slider is clicked, and logs no console error.

Needs Debian's chromium and the playwright Python package (no browser download); skips otherwise.
Screenshots go to artifacts/browser/ (and docs/screenshots/ with SIMCSE_LAB_UPDATE_SCREENSHOTS=1). The docs'
were taken with the two recipes' first seeds (`simcse-lab reproduce --config recipes/... --seeds 3`):
    SIMCSE_LAB_UPDATE_SCREENSHOTS=1 SIMCSE_LAB_BROWSER_TRAINED=outputs/unsup-simcse-default-seeds/seed-1 \
    SIMCSE_LAB_BROWSER_MODELS=outputs/sup-simcse-default-seeds/seed-1:data/models/bert-mini-mlm \
        pytest tests/test_explore_browser.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import build_tiny_bert
from test_browser import LIMIT_S, chromium_page, require_browser, screenshot

pytestmark = pytest.mark.browser

# one generous limit on every wait (SIMCSE_LAB_BROWSER_TIMEOUT_S, see test_browser): each waits on its condition,
# so a quiet machine goes on at once and a busy CI machine does not fail on a fixed 30 s
LIMIT_MS = LIMIT_S * 1000
SHOTS = {"numbers": "explore_numbers", "replay": "explore_replay", "anisotropy": "explore_anisotropy", "sphere": "explore_sphere",
         "map": "explore_map"}


@pytest.fixture(scope="module")
def three_model_page(tiny_model_dir, tmp_path_factory):
    from conftest import DATA_DIR

    require_browser()
    if not DATA_DIR or not Path(DATA_DIR).is_dir():
        pytest.skip("set SIMCSE_LAB_DATA: the replay needs a run trained with STS-B dev evaluation")
    from simcse_lab.apps.explore import explore
    from simcse_lab.train import TrainConfig, train

    root = tmp_path_factory.mktemp("explore-browser")
    train_file = root / "wiki.txt"
    train_file.write_text("\n".join((Path(DATA_DIR) / "wiki/wiki1m_head.txt").read_text(encoding="utf8").splitlines()[:300]) + "\n")
    trained = os.environ.get("SIMCSE_LAB_BROWSER_TRAINED")  # a real run for the docs screenshots
    if not trained:
        trained = root / "run"
        train(TrainConfig(model_name_or_path=str(tiny_model_dir), train_file=str(train_file), output_dir=str(trained), pooler_type="avg",
                          max_steps=6, eval_steps=2, per_device_train_batch_size=16, learning_rate=3e-3, eval_max_pairs=100,
                          geometry_snapshots=128, data_dir=DATA_DIR, show_progress=False))
    others = os.environ.get("SIMCSE_LAB_BROWSER_MODELS", "").split(os.pathsep) if os.environ.get("SIMCSE_LAB_BROWSER_MODELS") else [
        str(tiny_model_dir), str(build_tiny_bert(root / "other" / "tiny-bert-b", seed=1))]
    page = root / "explore.html"
    explore([trained, *others], output=page, data_dir=DATA_DIR, max_pairs=None if os.environ.get("SIMCSE_LAB_BROWSER_TRAINED") else 200,
            max_sentences=None if os.environ.get("SIMCSE_LAB_BROWSER_TRAINED") else 400, progress=False)
    return page


ALL_DRAWN = """() => {
  const plots = Array.from(document.querySelectorAll('.plot'));
  return plots.length > 0 && plots.every(div => div.getAttribute('data-rendered') === '1' && div._fullData
                                               && div._fullData.length > 0 && div.querySelector('.main-svg'));
}"""

POINT_ON_MAP = """(id) => {
  const gd = document.getElementById(id), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const trace = gd._fullData[0], box = gd.getBoundingClientRect();
  return {x: box.left + xa._offset + xa.l2p(trace.x[0]), y: box.top + ya._offset + ya.l2p(trace.y[0]), row: trace.customdata[0]};
}"""


def test_the_explore_page_renders_and_answers_in_chromium(three_model_page):
    with chromium_page(1280, 900, "explore_last_state.png") as (page, console_errors):
        outside = []

        def refuse_the_network(route):
            if route.request.url.startswith(("file:", "data:", "blob:")):
                return route.continue_()
            outside.append(route.request.url)
            return route.abort()

        page.route("**/*", refuse_the_network)
        started = time.monotonic()
        page.goto(three_model_page.as_uri(), wait_until="load", timeout=LIMIT_MS)
        page.wait_for_function("() => document.getElementById('headline') && document.querySelector('.plot[data-rendered]')",
                               timeout=LIMIT_MS)
        first = time.monotonic() - started
        page.wait_for_function(ALL_DRAWN, timeout=LIMIT_MS)
        print(f"first figure drawn after {first:.1f}s, all after {time.monotonic() - started:.1f}s (not a timed test)")
        assert page.locator("#headline td[data-key='spearman']").count() == 3

        # the replay: click the end of its slider; the sphere and the marker on the trajectory move
        replay = page.locator("#replay-0")
        replay.scroll_into_view_if_needed()
        before = page.evaluate("() => Array.from(document.getElementById('replay-0')._fullData[1].x).slice(0, 5)")
        steps = page.evaluate("() => document.getElementById('replay-0').layout.sliders[0].steps.length")
        rail = replay.locator(".slider-rail-rect").bounding_box()
        page.mouse.click(rail["x"] + rail["width"] - 2, rail["y"] + rail["height"] / 2)
        page.wait_for_function(f"() => document.getElementById('replay-0').layout.sliders[0].active === {steps - 1}", timeout=LIMIT_MS)
        page.wait_for_function("(b) => JSON.stringify(Array.from(document.getElementById('replay-0')._fullData[1].x).slice(0, 5))"
                               " !== JSON.stringify(b)", arg=before, timeout=LIMIT_MS)
        marker = page.evaluate("() => document.getElementById('replay-0')._fullData[4].x[0]")
        last_uniformity = page.evaluate("() => { const t = document.getElementById('replay-0')._fullData[2]; return t.x[t.x.length - 1]; }")
        assert marker == pytest.approx(last_uniformity)

        # the corpus map: hover shows the sentence, a click lists the neighbours in all three models
        page.locator("#map-0").scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        point = page.evaluate(f"({POINT_ON_MAP})('map-0')")
        page.mouse.move(point["x"], point["y"])
        page.wait_for_function("() => document.querySelector('#map-0 .hoverlayer .hovertext')", timeout=LIMIT_MS)
        page.mouse.click(point["x"], point["y"])
        page.wait_for_function(f"() => document.body.getAttribute('data-selected') === '{point['row']}'", timeout=LIMIT_MS)
        for k in range(3):
            assert page.locator(f"#neighbours-{k} li").count() == 8
        highlighted = page.evaluate("() => { const gd = document.getElementById('map-1'); return gd._fullData[gd._fullData.length - 2].x.length; }")
        assert highlighted == 8

        # search: type, pick a match, and it is selected
        page.locator("#search").fill("dog")
        page.wait_for_function("() => document.querySelectorAll('#matches button').length > 0", timeout=LIMIT_MS)
        chosen = page.locator("#matches button").first.inner_text()
        page.locator("#matches button").first.click()
        row = int(page.evaluate("() => document.body.getAttribute('data-selected')"))
        assert page.evaluate(f"() => window.simcseExplore.data.sentences[{row}]") == chosen and "dog" in chosen.lower()

        for section, name in SHOTS.items():
            element = page.locator(f"#{section}")
            element.scroll_into_view_if_needed()
            page.wait_for_timeout(500)  # WebGL (spheres, maps) paints a frame after plotly reports done
            screenshot(element, name)
    assert not outside, f"the page asked the network for {outside[:3]}"
    assert not console_errors, console_errors
