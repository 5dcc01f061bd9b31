"""conftest.py — where the tests find things: the reference folder ($SD_REFERENCE_DIR, default
../shared/reference beside the checkout, as the C tests) and the package itself (this checkout's
python/ unless the test run says otherwise). A missing reference file fails a test, never skips it."""
import os
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = PYTHON_DIR.parent
sys.path.insert(0, str(PYTHON_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def reference_dir():
    return Path(os.environ.get("SD_REFERENCE_DIR", REPO_DIR.parent / "shared" / "reference"))


def ref(relative):
    path = reference_dir() / relative
    assert path.exists(), f"reference file missing: {path} (set SD_REFERENCE_DIR)"
    return path


@pytest.fixture
def tiny_sd15():
    return ref("models/tiny-sd15"), ref("models/taesd")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # a skip would read as a pass in ctest's summary: here it is a failure
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} was skipped ({report.longrepr}): tests here never skip"
