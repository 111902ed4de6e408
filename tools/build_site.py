"""Build the static site `_site/` from the executed notebooks, offline: `bash scripts/docs.sh`
(or `python tools/build_site.py`).

- one HTML page per notebook of nbs/ (nbconvert, lab template), from `_build/executed/<name>.ipynb` when it was made
  from the notebook's current text (tests/test_notebooks.py writes it), else the notebook is executed here first
  (tools/nbexec.py, the same runner and checks as the test);
- nbdev's directives are honoured as on an nbdev site: `#| hide` cells are left out, `#| echo: false` hides a cell's
  code, `#| output: false` its outputs, and the `#|` lines themselves are not shown;
- ipywidgets cannot run without a kernel: each widget is replaced by a static picture of its last state (its controls
  and their values, and what its Output widgets showed, figures included), so the μ explorer shows its drawing;
- the results pages: every results/**/*.md rendered to HTML (tables, figures) and results/**/*.ipynb converted, the
  other files of results/ copied so that their links work;
- an index page with the notebooks in reading order, under the four parts of tools/reading_path.py (title and
  summary of each), and the results pages;
- no network at build or view time: MathJax is served from `_site/mathjax/` (the jupyter-server-mathjax package), no
  require.js / widget / mermaid script from a CDN, figures are embedded in the pages.
`_site/site.json` lists every page with the number of figures it must show (read by tests/test_browser.py).
"""
from __future__ import annotations

import argparse, html, json, re, shutil, subprocess, sys, time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbexec import EXECUTED, ROOT, NotebookFailed, execute_notebook, is_fresh  # noqa: E402
from reading_path import PARTS, part_of  # noqa: E402

NBS, RESULTS = ROOT / "nbs", ROOT / "results"
WIDGET_VIEW, WIDGET_STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
# The packaged MathJax has only the STIX-Web web fonts: use them and never probe for local fonts (as the classic
# Notebook did), and the HTML-CSS output in every browser, or MathJax asks for TeX fonts it does not have (404s).
MATHJAX_HEAD = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [['$','$'], ['\\\\(','\\\\)']], displayMath: [['$$','$$'], ['\\\\[','\\\\]']],
            processEscapes: true, processEnvironments: true},
  TeX: {equationNumbers: {autoNumber: "AMS", useLabelIds: true}},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               linebreaks: {automatic: true}},
  MMLorHTML: {prefer: "HTML"},  // Chromium has MathML now; its NativeMML output asks for TeX fonts not packaged
  menuSettings: {assistiveMML: false},  // the hidden MathML copy would fetch those TeX fonts too
  displayAlign: 'center', messageStyle: 'none'
});
</script>
<script src="%s"></script>"""

# The lab template, minus everything it would fetch from a CDN (require.js, the widget renderer, mermaid), plus a bar to
# move between pages. MathJax's URL is set to the local copy.
TEMPLATE = r"""{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}{{ resources.site_mathjax }}{%- endblock html_head_js_mathjax -%}
{% block extra_css %}<style>{{ resources.site_css }}</style>{% endblock extra_css %}
{%- block body_header -%}
{{ super() }}
{{ resources.site_nav }}
{%- endblock body_header -%}
{% block body_footer %}
{{ resources.site_nav }}
{{ super() }}
{% endblock body_footer %}
"""
SITE_CSS = """
.site-nav { display: flex; gap: 1.5em; padding: 0.6em 1em; margin: 0 0 1em 0; background: #f3f5f7;
  border-bottom: 1px solid #d0d7de; font-family: sans-serif; font-size: 14px; }
.site-nav a { text-decoration: none; color: #0550ae; }
.static-widget { border: 1px solid #d0d7de; border-radius: 4px; padding: 0.5em; margin: 0.3em 0; }
.static-widget .w-box-h { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.static-widget .w-box-v { display: flex; flex-direction: column; gap: 0.3em; }
.static-widget .w-control { font-family: sans-serif; font-size: 13px; }
.static-widget .w-tab-title { font-family: sans-serif; font-size: 13px; font-weight: bold; margin-top: 0.4em;
  border-bottom: 1px solid #d0d7de; }
.static-widget .w-note { font-family: sans-serif; font-size: 12px; color: #57606a; font-style: italic; }
.static-widget img { max-width: 100%; }
"""
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{title}</title>
<style>
body {{ font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1f2328;
        line-height: 1.5; }}
main {{ max-width: 60em; margin: 0 auto; padding: 0 1.5em 2em 1.5em; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 14px; }}
th, td {{ border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: left; }}
th {{ background: #f6f8fa; }}
code, pre {{ background: #f6f8fa; font-size: 90%; }} pre {{ padding: 0.6em; overflow-x: auto; }}
img {{ max-width: 100%; }}
{css}
</style>
{mathjax}
</head><body>
{nav}
<main>
{body}
</main>
{nav}
</body></html>
"""


def log(msg):
    print(f"[docs] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------------- the page list
def notebook_order():
    "The notebooks in reading order: index first, then by number (their file names)."
    nbs = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))
    return sorted(nbs, key=lambda p: (p.stem != "index", p.stem))


def title_and_summary(nb, fallback):
    "The notebook's `# Title` and its `> summary` line (nbdev's front matter convention)."
    for c in nb.cells:
        if c.cell_type != "markdown": continue
        m = re.search(r"^#\s+(.+)$", c.source, re.M)
        if m:
            s = re.search(r"^>\s*(.+)$", c.source, re.M)
            return m.group(1).strip(), (s.group(1).strip() if s else "")
    return fallback, ""


def site_path(repo_path: Path):
    "Where a file of the repository lands in the site (a path relative to the site root), or None if it is not there."
    try:
        rel = repo_path.resolve().relative_to(ROOT)
    except ValueError:
        return None
    parts = rel.parts
    if rel == Path("README.md"): return "index.html"
    if len(parts) == 2 and parts[0] == "nbs" and rel.suffix == ".ipynb": return notebook_page(rel.stem)
    if parts and parts[0] == "results":
        return str(rel.with_suffix(".html")) if rel.suffix in (".md", ".ipynb") else str(rel)
    return None


_MD_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s#]*)(#[^)\s]*)?\)")
_HTML_LINK = re.compile(r"\b(src|href)=\"([^\"#]+)(#[^\"]*)?\"")


def _site_target(target, src: Path, page: str):
    "The site URL (relative to `page`) of relative link `target` written in repository file `src`; '' if no page."
    if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("/"): return None  # absolute
    dest = site_path(src.parent / target)
    return "" if dest is None else "../" * page.count("/") + dest


def rewrite_links(text, src: Path, page: str):
    """Point the relative links of markdown/HTML `text` (written in repository file `src`) at the site: notebooks and
    results pages to their HTML pages, other results files to their copies. A markdown link to a repository file that
    is not on the site (source code, a folder) keeps its text and loses the link. `page` is the page's site path."""
    def md(m):
        bang, label, target, anchor = m.groups()
        new = _site_target(target, src, page)
        if new is None or (not target and anchor): return m.group(0)
        if new == "": return m.group(0) if bang else label
        return f"{bang}[{label}]({new}{anchor or ''})"

    def tag(m):
        new = _site_target(m.group(2), src, page)
        return m.group(0) if not new else f'{m.group(1)}="{new}{m.group(3) or ""}"'
    return _HTML_LINK.sub(tag, _MD_LINK.sub(md, text))


# ---------------------------------------------------------------------------------------------------- widgets
def _img(data, mime):
    b = data if isinstance(data, str) else "".join(data)
    return f'<img src="data:{mime};base64,{b.strip()}">'


def output_html(o):
    "HTML of one output captured by an Output widget (what JupyterLab showed in it)."
    if o.get("output_type") == "stream":
        return f"<pre>{html.escape(''.join(o.get('text', '')))}</pre>"
    if o.get("output_type") == "error":
        return f"<pre>{html.escape(o.get('ename', ''))}: {html.escape(o.get('evalue', ''))}</pre>"
    d = o.get("data", {})
    for mime in ("image/png", "image/jpeg"):
        if mime in d: return _img(d[mime], mime)
    if "image/svg+xml" in d: return "".join(d["image/svg+xml"])
    if "text/html" in d: return "".join(d["text/html"])
    if "text/markdown" in d: return markdown_html("".join(d["text/markdown"]))
    if "text/plain" in d: return f"<pre>{html.escape(''.join(d['text/plain']))}</pre>"
    return ""


def widget_html(mid, state, seen=None):
    "A static HTML picture of widget `mid` in its saved state (controls with their values, Output widgets' outputs)."
    seen = set() if seen is None else seen
    if mid in seen or mid not in state: return ""
    seen.add(mid)
    w = state[mid].get("state", {})
    name = w.get("_model_name", "")
    desc = html.escape(str(w.get("description", "")))
    kids = [c.removeprefix("IPY_MODEL_") for c in w.get("children", []) if isinstance(c, str)]
    if name in ("HBoxModel", "GridBoxModel"):
        return '<div class="w-box-h">' + "".join(widget_html(k, state, seen) for k in kids) + "</div>"
    if name in ("TabModel", "AccordionModel", "StackModel"):  # each page that shows something, under its title
        titles = w.get("titles") or [w.get("_titles", {}).get(str(i), "") for i in range(len(kids))]
        parts = []
        for i, k in enumerate(kids):
            inner = widget_html(k, state, seen)
            if "<img" not in inner and not re.sub(r"<[^>]+>", "", inner).strip(): continue  # never drawn (lazy tab)
            title = titles[i] if i < len(titles) and titles[i] else ""
            parts.append((f'<div class="w-tab-title">{html.escape(str(title))}</div>' if title else "") + inner)
        return '<div class="w-box-v">' + "".join(parts) + "</div>"
    if name in ("VBoxModel", "BoxModel"):
        return '<div class="w-box-v">' + "".join(widget_html(k, state, seen) for k in kids) + "</div>"
    if name == "OutputModel":
        return '<div class="w-output">' + "".join(output_html(o) for o in w.get("outputs", [])) + "</div>"
    if name == "ImageModel":  # the picture's bytes are a base64 buffer of the saved state
        buf = next((b for b in state[mid].get("buffers", []) if b.get("path") == ["value"]), None)
        fmt = str(w.get("format", "png"))
        return f'<img src="data:image/{fmt};base64,{buf["data"]}">' if buf and buf.get("encoding") == "base64" else ""
    if name in ("HTMLModel", "HTMLMathModel"):
        return f'<div class="w-control">{w.get("value", "")}</div>'
    if name == "LabelModel":
        return f'<div class="w-control">{html.escape(str(w.get("value", "")))}</div>'
    if name in ("FloatProgressModel", "IntProgressModel"):
        return (f'<div class="w-control">{desc} <progress value="{w.get("value", 0)}" max="{w.get("max", 100)}">'
                f'</progress></div>')
    if name == "ButtonModel":
        return f'<div class="w-control"><button disabled>{desc}</button></div>'
    if name in ("DropdownModel", "SelectModel", "RadioButtonsModel", "ToggleButtonsModel", "SelectionSliderModel"):
        labels, idx = w.get("_options_labels", []), w.get("index")
        val = labels[idx] if isinstance(idx, int) and 0 <= idx < len(labels) else ""
        return f'<div class="w-control">{desc} <b>{html.escape(str(val))}</b></div>'
    if "value" in w:
        v = w["value"]
        if isinstance(v, float):
            v = f"{v:.3f}".rstrip("0").rstrip(".")
        return f'<div class="w-control">{desc} <b>{html.escape(str(v))}</b></div>'
    return ""


def staticize_widgets(nb):
    """Replace each widget output by a display of its static picture (text/html), and drop the widget state so that
    nbconvert does not add the widget renderer (a CDN script). Returns the number of widgets replaced."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    n = 0
    for c in nb.cells:
        outs = []
        for o in c.get("outputs", []):
            view = o.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                outs.append(o); continue
            inner = widget_html(view.get("model_id", ""), state)
            if not inner: continue  # a widget that was closed or not saved: nothing to show
            n += 1
            body = (f'<div class="static-widget">{inner}<div class="w-note">A picture of the widget as the notebook '
                    f'left it. Open the notebook in Jupyter to move its controls.</div></div>')
            outs.append(nbformat.v4.new_output("display_data", data={"text/html": body}))
        if "outputs" in c: c.outputs = outs
    nb.metadata.pop("widgets", None)
    return n


# ---------------------------------------------------------------------------------------------------- notebooks
_DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")


def apply_directives(nb):
    "nbdev's display directives: drop `#| hide` cells, honour `echo: false` and `output: false`, strip `#|` lines."
    cells = []
    for c in nb.cells:
        if c.cell_type != "code":
            cells.append(c); continue
        lines, d = c.source.splitlines(), {}
        while lines and _DIRECTIVE.match(lines[0]):
            m = _DIRECTIVE.match(lines.pop(0)); d[m.group(1)] = m.group(2).lower()
        if "hide" in d or "exporti" in d: continue
        c.source = "\n".join(lines).strip("\n")
        if d.get("output") == "false": c.outputs = []
        if d.get("echo") == "false" or not c.source:
            c.metadata.setdefault("jupyter", {})["source_hidden"] = True
            c.metadata.setdefault("tags", []).append("remove_input")
        if not c.source and not c.get("outputs"): continue
        cells.append(c)
    nb.cells = cells


def count_images(nb):
    "Pictures the page will show: PNG/JPEG/SVG outputs, and <img> tags inside HTML outputs (static widgets)."
    n = 0
    for c in nb.cells:
        for o in c.get("outputs", []):
            d = o.get("data", {})
            if any(m in d for m in ("image/png", "image/jpeg", "image/svg+xml")): n += 1
            elif "text/html" in d: n += "".join(d["text/html"]).count("<img ")
    return n


def executed_notebook(src: Path, execute: bool, failed=()):
    """The executed notebook for `src`: the saved run if it is fresh, else a new execution (unless `execute` is False).
    `failed`: names of notebooks that just failed their test (not run again)."""
    saved = EXECUTED / src.name
    if is_fresh(saved, src): return nbformat.read(str(saved), as_version=4), "reused"
    if src.stem in failed:
        raise SystemExit(f"docs: {src.relative_to(ROOT)} failed its test (tests/test_notebooks.py), so it has no page")
    if not execute:
        raise SystemExit(f"docs: {saved.relative_to(ROOT)} is missing or older than {src.relative_to(ROOT)}: run "
                         "`bash scripts/test.sh tests/test_notebooks.py` (or drop --no-exec) to execute it")
    log(f"executing {src.name} (no fresh run in {EXECUTED.relative_to(ROOT)})")
    try:
        res = execute_notebook(src)
    except NotebookFailed as e:
        raise SystemExit(f"docs: {src.relative_to(ROOT)} failed, so its page cannot be built:\n{e}") from None
    return res.nb, f"executed in {res.seconds:.0f} s"


def mathjax_head(root):
    "The MathJax configuration and script tag for a page `root` (the path back to the site root) below `_site/`."
    return MATHJAX_HEAD % f"{root}mathjax/MathJax.js?config={MATHJAX_CONFIG}"


def nav_html(prev, nxt, root=""):
    parts = [f'<a href="{root}index.html">Index</a>']
    if prev: parts.insert(0, f'<a href="{root}{prev[0]}">&larr; {inline_code(prev[1])}</a>')
    if nxt: parts.append(f'<a href="{root}{nxt[0]}">{inline_code(nxt[1])} &rarr;</a>')
    return '<nav class="site-nav">' + "".join(parts) + "</nav>"


def exporter():
    import logging
    logging.getLogger("traitlets").setLevel(logging.ERROR)  # nbconvert warns about figures without alt text
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    ex = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"site.html.j2": TEMPLATE})],
                      template_file="site.html.j2")
    ex.exclude_input_prompt = ex.exclude_output_prompt = False
    ex.register_preprocessor("nbconvert.preprocessors.TagRemovePreprocessor", enabled=True)
    from traitlets.config import Config
    ex.config = Config({"TagRemovePreprocessor": {"remove_input_tags": ["remove_input"], "enabled": True}})
    return ex


def notebook_page(stem: str) -> str:
    "The page of notebook `stem`; nbs/index.ipynb gets its own name, since the site's index.html is the reading list."
    return "method.html" if stem == "index" else stem + ".html"


def build_notebook_pages(out, execute, manifest, failed=()):
    order = notebook_order()
    info = []
    for src in order:
        nb = nbformat.read(str(src), as_version=4)
        info.append((src, notebook_page(src.stem), *title_and_summary(nb, src.stem)))
    ex = exporter()
    for k, (src, page, title, summary) in enumerate(info):
        t0 = time.perf_counter()
        nb, how = executed_notebook(src, execute, failed)
        apply_directives(nb)
        n_widgets = staticize_widgets(nb)
        for c in nb.cells:
            if c.cell_type == "markdown": c.source = rewrite_links(c.source, src, page)
        nb.metadata["title"] = f"{title} · centripetal"
        prev = (info[k - 1][1], info[k - 1][2]) if k else None
        nxt = (info[k + 1][1], info[k + 1][2]) if k + 1 < len(info) else None
        body, _ = ex.from_notebook_node(nb, resources={"site_css": SITE_CSS, "site_nav": nav_html(prev, nxt),
                                                       "site_mathjax": mathjax_head("")})
        (out / page).write_text(body)
        n_img = count_images(nb)
        if body.count("<img ") < n_img:
            raise SystemExit(f"docs: {page} has {body.count('<img ')} <img> tags for {n_img} figures of {src.name}")
        manifest.append(dict(page=page, kind="notebook", source=str(src.relative_to(ROOT)), title=title,
                             summary=summary, images=n_img, widgets=n_widgets))
        log(f"{page}: {n_img} figures, {n_widgets} static widgets ({how}, {time.perf_counter() - t0:.1f} s)")
    return info


# ---------------------------------------------------------------------------------------------------- results pages
def markdown_html(text):
    import mistune
    md = mistune.create_markdown(escape=False, plugins=["table", "strikethrough", "footnotes", "url"])
    return md(text)


def page_html(title, body, page, css=""):
    root = "../" * page.count("/")
    nav = f'<nav class="site-nav"><a href="{root}index.html">Index</a></nav>'
    return PAGE.format(title=html.escape(title), body=body, nav=nav, mathjax=mathjax_head(root), css=SITE_CSS + css)


def build_results_pages(out, manifest):
    if not RESULTS.exists(): return []
    ex, pages = exporter(), []
    for src in sorted(RESULTS.rglob("*")):
        if not src.is_file() or ".ipynb_checkpoints" in src.parts: continue
        page = site_path(src)
        dest = out / page
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".md":
            text = src.read_text()
            m = re.search(r"^#+\s+(.+)$", text, re.M)
            title = m.group(1).strip() if m else str(src.relative_to(ROOT))
            body = markdown_html(rewrite_links(text, src, page))
            dest.write_text(page_html(title, body, page))
            n_img = body.count("<img ")
        elif src.suffix == ".ipynb":
            nb = nbformat.read(str(src), as_version=4)
            staticize_widgets(nb)
            for c in nb.cells:
                if c.cell_type == "markdown": c.source = rewrite_links(c.source, src, page)
            title = title_and_summary(nb, src.stem)[0]
            nb.metadata["title"] = f"{title} · centripetal"
            root = "../" * page.count("/")
            body, _ = ex.from_notebook_node(nb, resources={"site_css": SITE_CSS, "site_nav": nav_html(None, None, root),
                                                           "site_mathjax": mathjax_head(root)})
            dest.write_text(body)
            n_img = count_images(nb)
        else:
            shutil.copy2(src, dest); continue
        pages.append((page, title))
        manifest.append(dict(page=page, kind="results", source=str(src.relative_to(ROOT)), title=title, images=n_img))
    log(f"results: {len(pages)} pages")
    return pages


# ---------------------------------------------------------------------------------------------------- index
def readme_intro():
    "The README's title paragraph: what the project is."
    text = (ROOT / "README.md").read_text()
    paras = [p for p in text.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
    return markdown_html(rewrite_links(paras[0], ROOT / "README.md", "index.html")) if paras else ""


def inline_code(text):
    "Escape `text` for HTML, with its `code` spans as <code>."
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _part_lists(notebooks):
    "The index's notebook lists, one per part of the reading path (tools/reading_path.py), index.ipynb first."
    item = lambda src, page, title, summary: (
        f'<li><a href="{page}">{inline_code(title)}</a> <code>{src.stem}</code>'
        + (f"<br><span class='summary'>{inline_code(summary)}</span>" if summary else "") + "</li>")
    first = [item(*n) for n in notebooks if not re.match(r"\d+_", n[0].stem)]
    out = [f"<ul>{''.join(first)}</ul>"] if first else []
    for p, (title, _, _, what) in enumerate(PARTS):
        rows = [item(*n) for n in notebooks if re.match(r"\d+_", n[0].stem) and part_of(n[0].stem) == p]
        if rows: out.append(f"<h3>{html.escape(title)}</h3>\n<p>{html.escape(what[0].upper() + what[1:])}.</p>"
                            f"\n<ol>\n" + "\n".join(rows) + "\n</ol>")
    return "\n".join(out)


def build_index(out, notebooks, results, manifest):
    rows = _part_lists(notebooks)
    res = "\n".join(f'<li><a href="{page}">{html.escape(title)}</a> <code>{page.removesuffix(".html")}</code></li>'
                    for page, title in results)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    stamp = f"commit {commit.stdout.strip()}, " if commit.returncode == 0 and commit.stdout.strip() else ""
    body = f"""<h1>centripetal</h1>
{readme_intro()}
<h2>The notebooks, in reading order</h2>
<p>Each page is the notebook as executed: the paper's sentence and equation, the code, its figures and its tests.
Four parts: the paper, training and evaluating, reproducing the paper, and an appendix.</p>
{rows}
<h2>Results</h2>
<ul>
{res}
</ul>
<p class="stamp">Built from {stamp}{time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())} by
<code>bash scripts/docs.sh</code>.</p>"""
    css = (".summary { color: #57606a; font-size: 14px; } li { margin: 0.4em 0; }"
           " .stamp { color: #57606a; font-size: 13px; }")
    (out / "index.html").write_text(page_html("centripetal", body, "index.html", css))
    manifest.insert(0, dict(page="index.html", kind="index", source="README.md", title="centripetal", images=0))


def copy_mathjax(out):
    try:
        import jupyter_server_mathjax
    except ImportError:
        log("jupyter-server-mathjax is not installed: equations stay as TeX (pip install -e '.[dev]')")
        return
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(static, out / "mathjax", dirs_exist_ok=True)


def build(out=ROOT / "_site", execute=True, failed=()):
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    copy_mathjax(out)
    manifest = []
    notebooks = build_notebook_pages(out, execute, manifest, failed)
    results = build_results_pages(out, manifest)
    build_index(out, notebooks, results, manifest)
    (out / "site.json").write_text(json.dumps(manifest, indent=1))
    log(f"{len(manifest)} pages in {out} ({time.perf_counter() - t0:.0f} s); open {out / 'index.html'}")
    return manifest


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Build the static site of the executed notebooks and results, offline.")
    ap.add_argument("--out", default=str(ROOT / "_site"), help="output folder (default: _site)")
    ap.add_argument("--no-exec", action="store_true", help="fail instead of executing a notebook without a fresh run")
    a = ap.parse_args()
    build(Path(a.out), execute=not a.no_exec)
