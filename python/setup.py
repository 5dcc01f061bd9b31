"""setup.py — only what pyproject.toml cannot say: with SDSTREAM_LIBRARY set at build time, that
libsdstream.so is copied into the package (sdstream/libsdstream.so.0, where the binding looks
first after $SDSTREAM_LIBRARY) and the wheel is tagged for this platform; without it the package is
pure Python and uses an installed libsdstream (cmake --install) or $SDSTREAM_LIBRARY at run time."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

BUNDLED = os.environ.get("SDSTREAM_LIBRARY")


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        if BUNDLED:
            target = os.path.join(self.build_lib, "sdstream", "libsdstream.so.0")
            shutil.copyfile(os.path.realpath(BUNDLED), target)


class MaybeBinaryDistribution(Distribution):
    def has_ext_modules(self):
        return bool(BUNDLED)  # a bundled .so makes the wheel platform-specific


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=MaybeBinaryDistribution)
