"""Session order and bookkeeping shared by the tests.

- The browser tests run last: the site they open is built from the notebook runs that tests/test_notebooks.py saves
  in `_build/executed/`, so in one session each notebook is executed once.
- The notebooks that failed in this session are recorded, so the site build reports them instead of running them again.
- Tests can leave lines for the closing summary (`SUMMARY`): pytest hides what a passing test prints, and some figures
  (the reference network's largest differences) are worth reading in every CI log.
"""
FAILED_NOTEBOOKS = set()
SUMMARY = {}   # section title -> lines


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for title, lines in SUMMARY.items():
        terminalreporter.write_sep("-", title)
        for line in lines: terminalreporter.write_line(line)


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda it: it.path.name == "test_browser.py")  # stable: only moves the browser tests to the end


def pytest_runtest_logreport(report):
    if report.failed and "test_notebooks.py::test_notebook[" in report.nodeid:
        FAILED_NOTEBOOKS.add(report.nodeid.split("[", 1)[1].rstrip("]"))
