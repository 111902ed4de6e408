"""The project in a real browser: headless Chromium (Debian's `chromium`, driven by Playwright from PyPI).

1. `test_explorer_in_jupyterlab`: starts JupyterLab (127.0.0.1, a token, settings and workspaces in a temporary
   folder) on a temporary copy of nbs/17_explore.ipynb, runs all cells through JupyterLab's own command, asserts no
   cell failed, that the explorer widget (a slider whose description contains "μ", a label "N ... kept, M ...
   rejected") and its picture render, then sets the μ sliders by typing into their readouts (paper μ, a low μ) and
   moves them with the keyboard (End: the highest μ), and asserts that the kept/rejected counts change with μ.
   Screenshots of the widget at the three μ go to results/explorer/ with a README.md of what each shows.
   JupyterLab and its kernels are killed at the end whatever happens; every wait is bounded.
2. `test_site`: builds the static site (`tools/build_site.py`, what `bash scripts/docs.sh` runs; it reuses the notebook
   runs that tests/test_notebooks.py saved earlier in the same pytest session), serves `_site/` on 127.0.0.1 and opens
   every page: status 200, no console or page errors, no request leaving 127.0.0.1 (the site works offline), every
   <img> decoded (naturalWidth > 0) and at least as many as the figures of its notebook or results file, every local
   link answered, the equations typeset by the local MathJax, and the μ explorer's page shows its static picture.

Chromium missing: the tests are skipped, unless CENTRIPETAL_BROWSER=1 (CI sets it), where they fail.
"""
import os, re, shutil, signal, socket, subprocess, sys, threading, time, urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
SITE = ROOT / "_site"
SHOTS = ROOT / "results" / "explorer"
EXPLORER = ROOT / "nbs" / "17_explore.ipynb"
PAPER_MU = {"large": 1 / 2.1, "small": 1 / 2.4}
LOW_MU = 0.1
WAIT_MS = 60_000


def chromium_path():
    for p in (os.environ.get("CENTRIPETAL_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if p and Path(p).exists(): return p
    return None


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        msg = "chromium not found: `apt-get install -y chromium` (or set CENTRIPETAL_CHROMIUM to its path)"
        if os.environ.get("CENTRIPETAL_BROWSER") == "1": pytest.fail(msg)
        pytest.skip(msg)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[dev]'")
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=exe, args=["--disable-gpu", "--disable-dev-shm-usage"])
    yield b
    b.close()
    pw.stop()


# ---------------------------------------------------------------------------------------------------- JupyterLab
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    "JupyterLab on a temporary copy of the explorer notebook; killed (with its kernels) when the module ends."
    import nbformat
    work = tmp_path_factory.mktemp("lab")
    nb = nbformat.read(str(EXPLORER), as_version=4)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(work / EXPLORER.name))
    port, token = _free_port(), os.urandom(12).hex()
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"), JUPYTER_RUNTIME_DIR=str(work / "runtime"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={work / 'settings'}",
           f"--LabApp.workspaces_dir={work / 'workspaces'}", "--LabApp.news_url=",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
           "--ServerApp.terminals_enabled=False"] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = open(work / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start:\n{(work / 'jupyterlab.log').read_text()[-3000:]}")
                time.sleep(1)
        yield dict(base=base, token=token, work=work, log=work / "jupyterlab.log")
    finally:
        _stop(proc)
        log.close()


def _stop(proc):
    "Stop JupyterLab and everything it started (its kernels are in its process group)."
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # kernels left behind by a slow shutdown
    except ProcessLookupError:
        pass
    proc.wait(10)


_KEPT = re.compile(r"(\d+)[^\d,;]*?kept.*?(\d+)[^\d,;]*?rejected", re.S)

# In the page: the first cell output holding a slider whose description contains μ and a label with kept/rejected.
_FIND_EXPLORER = """() => {
  const outs = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
  const isMu = s => (s.querySelector('.widget-label')?.textContent || '').includes('μ');
  for (const o of outs) {
    const sliders = Array.from(o.querySelectorAll('.widget-slider')).filter(isMu);
    if (sliders.length && /kept/.test(o.textContent) && /rejected/.test(o.textContent)) {
      o.setAttribute('data-test-explorer', '1'); return true; }
  }
  return false; }"""

_STATE = """() => {
  const o = document.querySelector('[data-test-explorer]');
  const pick = sel => Array.from(o.querySelectorAll(sel)).map(e => e.textContent)
                          .filter(t => /kept/.test(t) && /rejected/.test(t));
  let labels = pick('.widget-label, .widget-html-content');  // leaf labels first; the first is the explorer's own
  if (!labels.length) labels = pick('.widget-inline-hbox, .widget-box');
  const imgs = Array.from(o.querySelectorAll('img'));
  const sliders = Array.from(o.querySelectorAll('.widget-slider')).map(s => ({
    desc: s.querySelector('.widget-label')?.textContent || '',
    value: s.querySelector('.widget-readout')?.textContent || ''}));
  return {label: labels.length ? labels[0] : '', sliders,
          imgs: imgs.map(i => ({w: i.naturalWidth, src: i.src.length + ':' + i.src.slice(-40)}))}; }"""

_KERNEL_IDLE = """() => { const w = window.jupyterapp?.shell?.currentWidget;
  const k = w?.sessionContext?.session?.kernel; return !!k && k.status === 'idle'; }"""


def _wait(page, js, what, timeout=WAIT_MS, polling="raf"):
    "Wait until `js` is true in the page, at most `timeout` ms; fail with `what` when it is not."
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try:
        page.wait_for_function(js, timeout=timeout, polling=polling)
    except PlaywrightTimeout:
        pytest.fail(f"JupyterLab: {what} (waited {timeout / 1000:.0f} s)", pytrace=False)


def _counts(state):
    m = _KEPT.search(state["label"])
    assert m, f"no 'N kept, M rejected' label in the explorer: {state['label']!r}"
    return int(m.group(1)), int(m.group(2))


def _wait_redraw(page, before, timeout=WAIT_MS):
    "Wait (bounded) until the kernel is idle and the explorer's picture or label differs from `before`."
    deadline = time.time() + timeout / 1000
    while time.time() < deadline:
        page.wait_for_timeout(500)
        s = page.evaluate(_STATE)
        if page.evaluate(_KERNEL_IDLE) and (s["imgs"] != before["imgs"] or s["label"] != before["label"]):
            page.wait_for_timeout(500)
            return page.evaluate(_STATE)
    return page.evaluate(_STATE)


def _set_readout(page, index, value):
    "Type `value` into the readout of the index-th μ slider of the explorer, as a user edits it, and press Enter."
    readout = page.locator("[data-test-explorer] .widget-slider").filter(has_text="μ").nth(index).locator(
        ".widget-readout")
    readout.click(timeout=WAIT_MS)
    page.keyboard.press("Control+A")
    page.keyboard.type(f"{value:.3f}")
    page.keyboard.press("Enter")


def _shoot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.locator("[data-test-explorer]").screenshot(path=str(path), timeout=WAIT_MS)
    return path


def test_explorer_in_jupyterlab(jupyterlab, browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    name = EXPLORER.name
    page.goto(f"{jupyterlab['base']}/lab/tree/{name}?token={jupyterlab['token']}&reset", timeout=WAIT_MS)
    _wait(page, "() => !!window.jupyterapp?.shell?.currentWidget?.content?.widgets", f"{name} did not open", 120_000)
    _wait(page, _KERNEL_IDLE, "the kernel did not start", 120_000)
    t0 = time.perf_counter()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    # done when every code cell has an execution count and the kernel is idle (bounded: 10 minutes)
    # done when every code cell has an execution count, or one has an error (Run All stops there), and the kernel is
    # idle (bounded: 10 minutes)
    _wait(page, """() => { const nb = window.jupyterapp.shell.currentWidget;
        const cells = nb.content.widgets.filter(c => c.model.type === 'code' && c.model.sharedModel.getSource().trim());
        const k = nb.sessionContext.session?.kernel;
        const failed = cells.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
        return cells.length && (failed || cells.every(c => c.model.executionCount)) && k && k.status === 'idle'; }""",
          "Run All did not finish", 600_000, polling=1000)
    run_s = time.perf_counter() - t0
    failed = page.evaluate("""() => { const errs = [];
        window.jupyterapp.shell.currentWidget.content.widgets.forEach((c, i) => {
          if (c.model.type !== 'code') return;
          for (const o of c.model.outputs.toJSON()) if (o.output_type === 'error')
            errs.push(`cell ${i}: ${o.ename}: ${o.evalue}\\n${(o.traceback || []).join('\\n').slice(-1500)}`); });
        return errs; }""")
    assert not failed, f"cells of {name} failed in JupyterLab:\n" + re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(failed))
    _wait(page, _FIND_EXPLORER, "no explorer widget (a slider whose description contains μ and a 'kept ... rejected' "
          "label in one cell output)")
    page.locator("[data-test-explorer]").scroll_into_view_if_needed(timeout=WAIT_MS)
    _wait(page, """() => Array.from(document.querySelectorAll('[data-test-explorer] img'))
                   .some(i => i.complete && i.naturalWidth > 0)""",
          "the explorer shows no picture (an <img> with naturalWidth > 0); a '<Figure size ...>' text instead means a "
          "non-inline matplotlib backend")
    state = page.evaluate(_STATE)
    mu = [s for s in state["sliders"] if "μ" in s["desc"]]
    assert mu, f"no μ slider in the explorer: {state['sliders']}"
    assert all(i["w"] > 0 for i in state["imgs"]), f"the explorer's picture did not render: {state['imgs']}"

    shots = {}

    def paper_value(desc):
        return PAPER_MU["small"] if "small" in desc else PAPER_MU["large"]

    # paper μ (the explorer may already be there; typing the value again does no harm)
    for i, s in enumerate(mu):
        before = page.evaluate(_STATE)
        _set_readout(page, i, paper_value(s["desc"]))
        _wait_redraw(page, before, timeout=20_000)
    state = page.evaluate(_STATE)
    shots["paper"] = (state, _shoot(page, "mu_paper.png"))
    # a low μ: the central regions shrink, the shift noise pushes true centers out, pairs are rejected
    for i in range(len(mu)):
        before = page.evaluate(_STATE)
        _set_readout(page, i, LOW_MU)
        _wait_redraw(page, before)
    state = page.evaluate(_STATE)
    shots["low"] = (state, _shoot(page, "mu_low.png"))
    # the highest μ with the keyboard: focus each slider's handle and press End
    for i in range(len(mu)):
        before = page.evaluate(_STATE)
        handle = page.locator("[data-test-explorer] .widget-slider").filter(has_text="μ").nth(i).locator(
            ".noUi-handle")
        handle.focus(timeout=WAIT_MS)
        page.keyboard.press("End")
        _wait_redraw(page, before)
    state = page.evaluate(_STATE)
    shots["high"] = (state, _shoot(page, "mu_high.png"))
    ctx.close()

    counts = {k: _counts(s) for k, (s, _) in shots.items()}
    values = {k: [x["value"] for x in s["sliders"] if "μ" in x["desc"]] for k, (s, _) in shots.items()}
    _write_readme(counts, values, {k: p for k, (_, p) in shots.items()}, mu, run_s)
    print(f"JupyterLab: run all {run_s:.0f} s; counts {counts}; μ {values}")
    assert all(float(v) < float(p) - 0.1 for v, p in zip(values["low"], values["paper"])), \
        f"the low μ was not set: {values['low']} (paper {values['paper']})"
    assert all(float(v) > float(p) for v, p in zip(values["high"], values["paper"])), \
        f"End did not raise μ: {values['high']} vs {values['paper']}"
    assert counts["low"] != counts["paper"], f"kept/rejected did not change from paper μ to μ = {LOW_MU}: {counts}"
    assert counts["low"][0] < counts["paper"][0], f"a smaller central region should keep fewer pairs: {counts}"
    assert counts["high"] != counts["low"], \
        f"kept/rejected did not change from μ = {LOW_MU} to the highest μ: {counts}"
    assert not errors, f"JavaScript errors in JupyterLab: {errors[:5]}"


def _write_readme(counts, values, paths, mu, run_s):
    def setting(k):
        return ", ".join(f"{s['desc']} = {v}" for s, v in zip(mu, values[k]))
    rows = "\n".join(f"| {k} | {setting(k)} | {counts[k][0]} | "
                     f"{counts[k][1]} | ![{k}]({paths[k].name}) |" for k in ("paper", "low", "high"))
    (SHOTS / "README.md").write_text(f"""# The μ explorer in JupyterLab

Screenshots taken by `tests/test_browser.py::test_explorer_in_jupyterlab` (headless Chromium driving JupyterLab on
`nbs/17_explore.ipynb`, after Run All): the explorer widget at the paper's μ, at a low μ ({LOW_MU} typed into the
sliders' readouts, or their minimum) and at the sliders' maximum (the End key on each slider). Kept and rejected
counts are read from the widget's label. Made by `bash scripts/test.sh tests/test_browser.py`; the notebook ran in
{run_s:.0f} s in JupyterLab.

| μ | sliders | kept | rejected | screenshot |
|---|---|---|---|---|
{rows}
""")


# ---------------------------------------------------------------------------------------------------- the static site
@pytest.fixture(scope="module")
def site():
    from build_site import build
    from conftest import FAILED_NOTEBOOKS
    t0 = time.perf_counter()
    try:
        manifest = build(SITE, failed=FAILED_NOTEBOOKS)
    except SystemExit as e:  # the builder's one-line errors (a failed notebook, ...)
        pytest.fail(str(e), pytrace=False)
    print(f"site built in {time.perf_counter() - t0:.0f} s")
    return manifest


@pytest.fixture(scope="module")
def server(site):
    handler = partial(_QuietHandler, directory=str(SITE))
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError): super().handle_error(request, client_address)


# MathJax 2 tests whether its web fonts have loaded against an empty font, `@font-face {MathJax_Blank: about:blank}`;
# Chromium refuses that URL (a console error and a failed request) and MathJax works on. Nothing else is excused.
_MATHJAX_PROBE = ("Access to font at 'about:blank'", "about:blank")


def _visit(page, url):
    "Open `url`; return (status, errors: console errors, page errors, failed and non-local requests)."
    errors, probe = [], []

    def console(m):
        if m.type != "error": return
        if m.text.startswith(_MATHJAX_PROBE[0]): probe.append(m.text)
        elif m.text == "Failed to load resource: net::ERR_FAILED" and probe: probe.append(m.text)
        else: errors.append(f"console {m.type}: {m.text}")

    def failed(r):
        if r.url == _MATHJAX_PROBE[1]: probe.append(r.url)
        else: errors.append(f"request failed: {r.url} ({r.failure})")
    page.on("console", console)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", failed)

    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith("data:") or host == "127.0.0.1": return r.continue_()
        errors.append(f"request leaves the machine: {r.request.url}")
        r.abort()
    page.route("**/*", route)
    resp = page.goto(url, wait_until="networkidle", timeout=WAIT_MS)  # MathJax loads its fonts after `load`
    return (resp.status if resp else None), errors


def test_site(site, server, browser):
    problems, pages = [], {p["page"]: p for p in site}
    nb_pages = [p for p in site if p["kind"] == "notebook"]
    assert nb_pages and len(nb_pages) == len([p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_")])
    links = set()
    ctx = browser.new_context()
    for entry in site:
        page = ctx.new_page()
        url = urljoin(server, entry["page"])
        status, errors = _visit(page, url)
        if status != 200: problems.append(f"{entry['page']}: HTTP {status}")
        problems += [f"{entry['page']}: {e}" for e in errors]
        imgs = page.evaluate("""() => Array.from(document.images).map(i => ({ok: i.complete && i.naturalWidth > 0,
                                src: i.src.slice(0, 60)}))""")
        bad = [i["src"] for i in imgs if not i["ok"]]
        if bad: problems.append(f"{entry['page']}: {len(bad)} image(s) not shown: {bad[:3]}")
        if len(imgs) < entry["images"]:
            problems.append(f"{entry['page']}: {len(imgs)} <img> for the {entry['images']} figures of "
                            f"{entry['source']}")
        links |= set(page.evaluate("""() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"""))
        if entry["page"] == "00_shift.html":  # equations: typeset by the local MathJax, not left as TeX
            page.wait_for_function("() => document.querySelectorAll('.MathJax, .MathJax_Display').length > 0",
                                   timeout=WAIT_MS)
        if entry["page"] == "17_explore.html":
            n = page.evaluate("""() => Array.from(document.querySelectorAll('.static-widget img'))
                                 .filter(i => i.naturalWidth > 0).length""")
            if n < 1: problems.append("17_explore.html: the explorer's static picture is missing")
        page.close()
    local = sorted(l.split("#")[0] for l in links if l.startswith(server))
    for l in dict.fromkeys(local):
        try:
            urllib.request.urlopen(l, timeout=10).close()
        except Exception as e:  # noqa: BLE001 - any failure is a broken link
            problems.append(f"broken link {l.removeprefix(server)}: {e}")
    ctx.close()
    assert pages["17_explore.html"]["widgets"] >= 1, "17_explore.html: no widget output in the executed explorer"
    assert sum(p["images"] for p in nb_pages) > 0, "no notebook page has a figure"
    assert not problems, f"{len(problems)} problem(s) on the site:\n" + "\n".join(problems)
