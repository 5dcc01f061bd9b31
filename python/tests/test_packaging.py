"""test_packaging.py — the package installs offline with Debian's pip and setuptools, and a wheel
can be built: `pip install --no-index --no-build-isolation ./python` into a fresh virtual
environment (using the library through $SDSTREAM_LIBRARY), and a wheel built with the library
bundled that works with no environment variable at all. Nothing is downloaded (--no-index)."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import PYTHON_DIR, ref

PROBE = """
import numpy as np, sdstream, sys
s = sdstream.StreamDiffusion(model=sys.argv[1], taesd=sys.argv[2], width=64, height=64)
s.prepare("a watercolor cat")
out = s(np.zeros((64, 64, 3), np.uint8))
print(sdstream.__file__, sdstream._lib.lib._name, out.shape, sep="\\n")
"""


def library():
    path = os.environ.get("SDSTREAM_LIBRARY")
    assert path and Path(path).exists(), "set SDSTREAM_LIBRARY to the built libsdstream.so (ctest does)"
    return path


def source_copy(tmp_path):
    """python/ without tests or earlier build output: pip builds in the source tree."""
    src = tmp_path / "src"
    shutil.copytree(PYTHON_DIR, src, ignore=shutil.ignore_patterns(
        "tests", "build", "dist", "*.egg-info", "__pycache__"))
    return src


def venv(path):
    # Debian's numpy, setuptools and wheel come from the system site-packages; pip never downloads
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)], check=True)
    return path / "bin" / "python"


def run(cmd, env_library=None, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("SDSTREAM_LIBRARY", "PYTHONPATH")}
    if env_library:
        env["SDSTREAM_LIBRARY"] = env_library
    result = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def probe(python, env_library=None):
    model, taesd = ref("models/tiny-sd15"), ref("models/taesd")
    return run([python, "-c", PROBE, model, taesd], env_library, cwd="/").splitlines()


def test_pip_install_offline_into_a_venv(tmp_path):
    src, python = source_copy(tmp_path), venv(tmp_path / "venv")
    run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation", src])
    module, loaded, shape = probe(python, library())
    assert module.startswith(str(tmp_path / "venv")), module
    assert loaded == library() and shape == "(64, 64, 3)"
    # without the variable and without a bundled or installed library: a clear ImportError
    env = {k: v for k, v in os.environ.items() if k != "SDSTREAM_LIBRARY"}
    r = subprocess.run([str(python), "-c", "import sdstream"], env=env, capture_output=True,
                       text=True, cwd="/")
    if r.returncode != 0:
        assert "SDSTREAM_LIBRARY" in r.stderr and "libsdstream" in r.stderr, r.stderr


def test_wheel_with_the_library_bundled(tmp_path):
    src, dist = source_copy(tmp_path), tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-index", "--no-build-isolation", "--no-deps",
         "-w", dist, src], library())
    (wheel,) = dist.glob("sdstream-*.whl")
    assert "linux" in wheel.name, f"a wheel carrying a .so must be platform-tagged: {wheel.name}"
    assert "sdstream/libsdstream.so.0" in zipfile.ZipFile(wheel).namelist()
    python = venv(tmp_path / "venv")
    run([python, "-m", "pip", "install", "--no-index", "--no-deps", wheel])
    module, loaded, shape = probe(python)  # no SDSTREAM_LIBRARY: the bundled copy
    package_dir = str(Path(module).parent)
    assert loaded == str(Path(package_dir) / "libsdstream.so.0"), (loaded, package_dir)
    assert shape == "(64, 64, 3)"
