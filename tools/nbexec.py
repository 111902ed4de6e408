"""Execute a notebook the way `nbdev-test` does, but in a real Jupyter kernel with the inline matplotlib backend, and
check that every figure it draws reaches the reader as a PNG.

Used by tests/test_notebooks.py (one pytest test per notebook) and by tools/build_site.py (the static site reuses the
executed copies in `_build/executed/`, or runs this itself when they are missing or stale).

Which cells run is decided by nbdev itself (`nbdev.test._skip_cell`): markdown and `#| eval: false` cells are skipped,
so are cells with a flag of `tst_flags` in pyproject.toml (`#| slow`) unless CENTRIPETAL_SLOW=1, and the whole notebook
when its front matter says `skip_exec`. The kernel (`python3`) runs in nbs/ with IN_TEST=1 as under nbdev-test, and
without MPLBACKEND, so ipykernel's default, module://matplotlib_inline.backend_inline, is what a reader gets.

Before the first cell a hidden setup (not stored in the notebook) installs two kernel-side hooks:
- every `matplotlib.figure.Figure` created while a cell runs is remembered, and IPython's display formatter marks the
  figures it turns into `image/png`; a figure saved with `savefig` (to a file, or into memory for an ipywidgets Image)
  counts as delivered too;
- a `post_run_cell` hook (it runs after the inline backend's own end-of-cell flush) lists the figures of that cell
  that were never displayed as PNG (a non-inline backend, a figure closed before the end of the cell, a Figure made
  without pyplot and never shown) and whether the backend is still the inline one.
After each cell the runner asks the kernel for that list (a second, hidden request) and reports it with the cell.

Run as a script: `python tools/nbexec.py nbs/00_shift.ipynb [...]` executes and checks each, writing
`_build/executed/<name>.ipynb`.
"""
from __future__ import annotations

import asyncio, hashlib, json, os, re, sys, time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "executed"
INLINE = "module://matplotlib_inline.backend_inline"
FIG_REPR = re.compile(r"^<Figure size \d+(\.\d+)?x\d+(\.\d+)? with \d+ Axes>$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_TIMEOUT = 600  # seconds per cell, as nbdev-test; the slowest cells (training notebooks) take ~1 minute on 2 cores

# The kernel-side checks. Everything lives in one object on the IPython shell (not in the user namespace), so the
# notebook cannot see or clobber it.
_SETUP = r'''
def _centripetal_fig_check():
    import sys, json
    ip = get_ipython()
    class Check:
        def __init__(self):
            self.created, self.shown, self.problems, self.backend = [], set(), [], None
        def backend_now(self):
            mpl = sys.modules.get("matplotlib")
            if mpl is None: return None
            b = dict.__getitem__(mpl.rcParams, "backend")  # reading rcParams["backend"] would resolve an auto backend
            return None if b is mpl.rcsetup._auto_backend_sentinel else str(b)
        def post_run_cell(self, result):
            b = self.backend_now()
            if b is not None and b != self.backend:
                self.backend = b
                if b not in (%(inline)r, "inline"):
                    self.problems.append(f"matplotlib backend is {b!r}, not the inline one: figures are not shown "
                                         "(remove matplotlib.use(...) / MPLBACKEND)")
            lost = [f for f in self.created if id(f) not in self.shown]
            if lost:
                sizes = ", ".join(f"{w:g}x{h:g} in, {len(f.axes)} axes" for f in lost
                                  for w, h in [tuple(f.get_size_inches())])
                self.problems.append(f"{len(lost)} figure(s) drawn but neither displayed as a PNG nor saved ({sizes}): "
                                     "display them (leave them open at the end of the cell, or end the cell with the "
                                     "figure), do not close them first")
            self.created, self.shown = [], set()
        def report(self):
            out, self.problems = self.problems, []
            return json.dumps(out)
    check = Check()
    fmt = ip.display_formatter
    orig_format = fmt.format
    def format(obj, *a, **k):
        data = orig_format(obj, *a, **k)
        mf = sys.modules.get("matplotlib.figure")
        if mf is not None and isinstance(obj, mf.Figure):
            if "image/png" in data[0]: check.shown.add(id(obj))
            else: check.problems.append("a figure was displayed as text only (%(no_png)s): the inline backend is "
                                        "not active")
        return data
    fmt.format = format
    def patch(mf):
        orig_init = mf.Figure.__init__
        def __init__(self, *a, **k):
            orig_init(self, *a, **k)
            check.created.append(self)
        mf.Figure.__init__ = __init__
        orig_savefig = mf.Figure.savefig
        def savefig(self, *a, **k):
            # a figure saved went where it was meant to go: a file (a CLI's --plot, a results figure) or memory (an
            # ipywidgets Image); only figures neither displayed nor saved are lost
            check.shown.add(id(self))
            return orig_savefig(self, *a, **k)
        mf.Figure.savefig = savefig
    # patch Figure when matplotlib.figure is first imported (by the notebook), never importing matplotlib ourselves
    if "matplotlib.figure" in sys.modules: patch(sys.modules["matplotlib.figure"])
    else:
        import importlib.util
        class Finder:
            def find_spec(self, name, path=None, target=None):
                if name != "matplotlib.figure": return None
                sys.meta_path.remove(self)
                spec = importlib.util.find_spec(name)
                orig_exec = spec.loader.exec_module
                def exec_module(module):
                    orig_exec(module)
                    patch(module)
                spec.loader.exec_module = exec_module
                return spec
        sys.meta_path.insert(0, Finder())
    ip.events.register("post_run_cell", check.post_run_cell)
    ip._centripetal_fig_check = check
    if %(root)r not in sys.path: sys.path.insert(0, %(root)r)
_centripetal_fig_check()
del _centripetal_fig_check
'''
_REPORT = "print(get_ipython()._centripetal_fig_check.report())"
_BACKEND = "import matplotlib; print(matplotlib.get_backend())"


class NotebookFailed(AssertionError):
    pass


@dataclass
class Result:
    path: Path
    nb: nbformat.NotebookNode
    seconds: float
    ran: int = 0
    skipped: list = field(default_factory=list)  # (index, reason)
    backend: str = ""


def slow_enabled():
    return os.environ.get("CENTRIPETAL_SLOW") == "1"


def source_hash(path):
    "Hash of the code and markdown a notebook's execution depends on (outputs and metadata excluded)."
    nb = nbformat.read(str(path), as_version=4)
    h = hashlib.sha256()
    for c in nb.cells: h.update(f"{c.cell_type}\0{c.source}\0".encode())
    return h.hexdigest()[:16]


def cells_to_skip(path, slow=None):
    """{cell index: reason} of the cells nbdev-test would not run in the notebook at `path` (markdown cells excluded);
    None when nbdev skips the whole notebook (front matter `skip_exec`, or not a Python notebook)."""
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    from nbdev.test import _skip_cell
    from nbdev.frontmatter import nb_frontmatter
    from nbdev.process import nb_lang
    from fastcore.basics import str2bool
    slow = slow_enabled() if slow is None else slow
    flags = get_config(Path(path).resolve()).tst_flags
    flags = flags.split() if isinstance(flags, str) else list(flags or [])
    nb = NBProcessor(path, rm_directives=False, process=True).nb
    if str2bool(nb_frontmatter(nb).get("skip_exec", False)) or nb_lang(nb) != "python": return None
    skip = _skip_cell(nb, flags, ["slow"] if slow else [])
    out = {}
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code": continue
        hit = skip(c)
        if hit:
            d = getattr(c, "directives_", {}) or {}
            out[i] = "flag " + ",".join(sorted(hit)) if isinstance(hit, set) else ("eval: false" if "eval" in d else "")
    return out


def kernel_env():
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["IN_TEST"] = "1"
    env.setdefault("OMP_NUM_THREADS", "2")
    pp = env.get("PYTHONPATH", "")
    if str(ROOT) not in pp.split(os.pathsep): env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), pp) if p)
    return env


def _stream_text(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def _all_outputs(nb):
    "(where, output) of every output of the notebook, including those captured inside ipywidgets Output widgets."
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []): yield f"cell {i}", o
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    for mid, w in state.items():
        for o in w.get("state", {}).get("outputs", []) or []: yield f"Output widget {mid[:8]}", o


def bare_figure_reprs(nb):
    "Outputs that are only the text repr of a matplotlib figure (a figure the reader does not see)."
    bad = []
    for where, o in _all_outputs(nb):
        data = o.get("data", {})
        text = data.get("text/plain", "")
        text = "".join(text) if isinstance(text, list) else text
        if "image/png" not in data and FIG_REPR.match(text.strip()): bad.append((where, text.strip()))
    return bad


def _describe(i, cell, lines):
    src = "\n".join("    " + l for l in cell.source.splitlines()[:25])
    more = "\n    ..." if cell.source.count("\n") >= 25 else ""
    return f"cell {i} (id {cell.get('id', '?')}):\n{src}{more}\n" + "\n".join(f"  -> {l}" for l in lines)


def poll_in_steps(channel, step: float = 1.0):
    """Make `channel.get_msg(timeout)` wait in short polls of `step` seconds instead of one long one. A long asyncio wait
    on a ZMQ socket can miss a message that has already arrived (its file descriptor signals edges, not levels), so the
    client sat idle beside an idle kernel until the cell timeout (seen once per few runs of 17_explore's widgets; nbclient
    issue 312). Each new poll looks at the socket again, so a waiting message is read within `step` seconds."""
    from queue import Empty
    from jupyter_core.utils import ensure_async
    get_msg = channel.get_msg

    async def patient_get_msg(timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = step if deadline is None else max(0.0, min(step, deadline - time.monotonic()))
            try:
                return await ensure_async(get_msg(timeout=wait))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline: raise

    channel.get_msg = patient_get_msg


def execute_notebook(path, save_dir=EXECUTED, timeout=CELL_TIMEOUT, slow=None, kernel_name="python3", log=None):
    """Execute notebook `path` cell by cell in a fresh kernel (cwd: its folder), skipping the cells nbdev-test skips.
    Raises NotebookFailed naming the cell, its source and the traceback (a cell error) or the figures that were not
    shown; on success writes the executed notebook to `save_dir/<name>.ipynb` and returns a Result."""
    from jupyter_core.utils import ensure_async
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    path = Path(path).resolve()
    skip = cells_to_skip(path, slow)
    nb = nbformat.read(str(path), as_version=4)
    if skip is None: return None
    stale = Path(save_dir) / path.name if save_dir else None
    if stale is not None and stale.exists(): stale.unlink()  # never leave an old success behind a failure
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=timeout, allow_errors=False, record_timing=True,
                            resources={"metadata": {"path": str(path.parent)}})
    t0, res, problems = time.perf_counter(), Result(path, nb, 0.0), []

    async def hidden(code):
        cell = nbformat.v4.new_code_cell(code)
        nb.cells.append(cell)  # nbclient stores the executed cell at its index: give it a slot, removed right after
        try:
            await client.async_execute_cell(cell, len(nb.cells) - 1, store_history=False)
        finally:
            nb.cells.pop()
        return _stream_text(cell).strip()

    async def run():
        # one event loop for the kernel client's whole life (nbclient's sync wrappers may switch loops between calls)
        async with client.async_setup_kernel(env=kernel_env(), cwd=str(path.parent)):
            for channel in (client.kc.shell_channel, client.kc.iopub_channel): poll_in_steps(channel)
            info = await client.async_wait_for_reply(await ensure_async(client.kc.kernel_info()))
            nb.metadata["language_info"] = info["content"]["language_info"]
            await hidden(_SETUP % dict(inline=INLINE, root=str(ROOT), no_png="<Figure size ...>"))
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code": continue
                if i in skip:
                    res.skipped.append((i, skip[i])); cell.outputs = []; continue
                if log: log(f"{path.name}: cell {i}")
                try:
                    await client.async_execute_cell(cell, i, execution_count=res.ran + 1)  # hidden ones not counted
                except CellExecutionError as e:
                    raise NotebookFailed(f"{path.name}: cell {i} (id {cell.get('id', '?')}) raised an error\n"
                                         f"{ANSI.sub('', str(e))}") from None
                res.ran += 1
                found = json.loads(await hidden(_REPORT) or "[]")
                found = [m if found.count(m) == 1 else f"{m} (x{found.count(m)})" for m in dict.fromkeys(found)]
                problems.extend([_describe(i, cell, found)] if found else [])
            res.backend = await hidden(_BACKEND)
            client.set_widgets_metadata()

    asyncio.run(run())
    res.seconds = time.perf_counter() - t0
    reprs = bare_figure_reprs(nb)
    if reprs: problems.append("outputs that are a figure's text repr, not its picture: " +
                              "; ".join(f"{w}: {t}" for w, t in reprs))
    if problems:
        raise NotebookFailed(f"{path.name}: figures the reader does not see (kernel backend {res.backend}):\n\n" +
                             "\n\n".join(problems))
    nb.metadata.setdefault("centripetal", {})["source_hash"] = source_hash(path)
    nb.metadata["centripetal"]["slow"] = bool(slow_enabled() if slow is None else slow)
    if save_dir:
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(Path(save_dir) / path.name))
    return res


def is_fresh(executed, source):
    "True when `executed` (a saved run) was made from the current text of notebook `source`."
    try:
        nb = nbformat.read(str(executed), as_version=4)
    except (OSError, ValueError):
        return False
    return nb.metadata.get("centripetal", {}).get("source_hash") == source_hash(source)


if __name__ == "__main__":
    if len(sys.argv) < 2: sys.exit("usage: python tools/nbexec.py nbs/NAME.ipynb [...]  (executes and checks each)")
    rc = 0
    for p in sys.argv[1:]:
        try:
            r = execute_notebook(p)
            print(f"{p}: ok, {r.ran} cells in {r.seconds:.0f} s, backend {r.backend}" if r else f"{p}: skipped")
        except NotebookFailed as e:
            print(e); rc = 1
    sys.exit(rc)
