"""The PEP 517 build backend of the taskmgr package: setuptools, offline.

Every hook is setuptools.build_meta's, with two changes:

- Wheels and sdists are built in a scratch copy of the project, so that a
  build leaves nothing (build/, *.egg-info) in the source tree.
- setuptools before 70.1 makes wheels only with the separate `wheel`
  package, which an offline machine may lack.  There the wheel hooks still
  let setuptools do the work -- read pyproject.toml, write the metadata
  (egg_info) and lay the package out (build_py) -- and only zip the result
  into a pure-Python wheel themselves, as bdist_wheel would.  The
  metadata hooks are left out, so the frontend reads the metadata from
  that wheel; editable installs get a .pth file naming the project.

So `pip install --no-build-isolation ./examples/python` needs nothing but
setuptools >= 61 in the environment.
"""

import base64
import contextlib
import hashlib
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import zipfile

import setuptools
from setuptools import build_meta as _setuptools

__all__ = [
    "get_requires_for_build_sdist", "get_requires_for_build_wheel",
    "get_requires_for_build_editable", "prepare_metadata_for_build_wheel",
    "prepare_metadata_for_build_editable", "build_sdist", "build_wheel",
    "build_editable",
]

# What a scratch copy leaves out: earlier in-place builds and caches.
_NOT_COPIED = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.pyc")
_TAG = "py3-none-any"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)   # reproducible wheels


def _setuptools_makes_wheels():
    """Whether setuptools has a bdist_wheel command: its own (70.1 and
    later) or the `wheel` package's."""
    for module in ("setuptools.command.bdist_wheel", "wheel.bdist_wheel"):
        try:
            if importlib.util.find_spec(module) is not None:
                return True
        except ImportError:   # no `wheel` package at all
            pass
    return False


# --------------------------------------------------------------------------
# The hooks

def get_requires_for_build_sdist(config_settings=None):
    return _setuptools.get_requires_for_build_sdist(config_settings)


def build_sdist(sdist_directory, config_settings=None):
    sdist_directory = os.path.abspath(sdist_directory)
    with _scratch_copy():
        return _setuptools.build_sdist(sdist_directory, config_settings)


def get_requires_for_build_wheel(config_settings=None):
    if _setuptools_makes_wheels():
        return _setuptools.get_requires_for_build_wheel(config_settings)
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    return _setuptools.prepare_metadata_for_build_wheel(metadata_directory,
                                                        config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if _setuptools_makes_wheels():
        wheel_directory = os.path.abspath(wheel_directory)
        if metadata_directory is not None:
            metadata_directory = os.path.abspath(metadata_directory)
        with _scratch_copy():
            return _setuptools.build_wheel(wheel_directory, config_settings,
                                           metadata_directory)
    with tempfile.TemporaryDirectory() as tmp:
        meta, lib = _setuptools_stage(tmp)
        files = []
        for top, dirs, names in os.walk(lib):
            dirs.sort()
            for n in sorted(names):
                path = os.path.join(top, n)
                with open(path, "rb") as f:
                    files.append((os.path.relpath(path, lib).replace(os.sep, "/"), f.read()))
        return _write_wheel(wheel_directory, meta, files)


def get_requires_for_build_editable(config_settings=None):
    if _setuptools_makes_wheels():
        return _setuptools.get_requires_for_build_editable(config_settings)
    return []


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    return _setuptools.prepare_metadata_for_build_editable(metadata_directory,
                                                           config_settings)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    if _setuptools_makes_wheels():
        return _setuptools.build_editable(wheel_directory, config_settings,
                                          metadata_directory)
    with tempfile.TemporaryDirectory() as tmp:
        meta, _ = _setuptools_stage(tmp, build_py=False)
        name = _field(meta, "Name")
        pth = (os.path.abspath(os.getcwd()) + "\n").encode()
        return _write_wheel(wheel_directory, meta,
                            [("__editable__.%s.pth" % _safe(name), pth)])


if not _setuptools_makes_wheels():
    # PEP 517: without these hooks the frontend builds the wheel, once, and
    # reads the metadata from it (setuptools' would need bdist_wheel).
    del prepare_metadata_for_build_wheel, prepare_metadata_for_build_editable
    __all__ = [h for h in __all__ if not h.startswith("prepare_metadata")]


# --------------------------------------------------------------------------
# Helpers

class _scratch_copy:
    """Run the block in a copy of the project (the current directory)."""

    def __enter__(self):
        self.cwd = os.getcwd()
        self.tmp = tempfile.mkdtemp(prefix="taskmgr-build-")
        copy = os.path.join(self.tmp, "src")
        shutil.copytree(self.cwd, copy, ignore=_NOT_COPIED)
        os.chdir(copy)
        return copy

    def __exit__(self, *exc):
        os.chdir(self.cwd)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def _setuptools_stage(tmp, build_py=True):
    """Let setuptools write the metadata (egg_info) and, with build_py, lay
    out the package's files, all under tmp; (PKG-INFO text, files' root)."""
    egg_base = os.path.join(tmp, "egg")
    lib = os.path.join(tmp, "lib")
    os.mkdir(egg_base)
    args = ["--quiet", "egg_info", "--egg-base", egg_base]
    if build_py:
        args += ["build_py", "--build-lib", lib]
    # setup() reads pyproject.toml from the current directory, the project.
    with contextlib.redirect_stdout(sys.stderr):
        setuptools.setup(script_name="setup.py", script_args=args)
    infos = [d for d in os.listdir(egg_base) if d.endswith(".egg-info")]
    if len(infos) != 1:
        raise RuntimeError("setuptools egg_info wrote %r, expected one .egg-info" % infos)
    with open(os.path.join(egg_base, infos[0], "PKG-INFO"), encoding="utf-8") as f:
        return f.read(), lib


def _field(meta, key):
    for line in meta.splitlines():
        if line.startswith(key + ": "):
            return line[len(key) + 2:].strip()
    raise RuntimeError("the metadata has no %s" % key)


def _safe(name):
    """A project name as wheel file names spell it (PEP 427, PEP 503)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _dist_info(meta):
    """(dist-info directory name, [(file name, bytes)])"""
    dist = "%s-%s.dist-info" % (_safe(_field(meta, "Name")), _field(meta, "Version"))
    wheel = ("Wheel-Version: 1.0\nGenerator: taskmgr_build\n"
             "Root-Is-Purelib: true\nTag: %s\n" % _TAG)
    return dist, [("METADATA", meta.encode("utf-8")), ("WHEEL", wheel.encode())]


def _write_wheel(wheel_directory, meta, files):
    """A wheel of files [(path in the wheel, bytes)] and meta; its name."""
    dist, info = _dist_info(meta)
    files = list(files) + [(dist + "/" + n, d) for n, d in info]
    name = "%s-%s-%s.whl" % (_safe(_field(meta, "Name")), _field(meta, "Version"), _TAG)
    record = []
    os.makedirs(wheel_directory, exist_ok=True)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w",
                         zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files:
            _add(z, arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append("%s,sha256=%s,%d" % (arcname, digest.decode(), len(data)))
        record.append(dist + "/RECORD,,")
        _add(z, dist + "/RECORD", ("\n".join(record) + "\n").encode())
    return name


def _add(z, arcname, data):
    info = zipfile.ZipInfo(arcname, _ZIP_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data)
