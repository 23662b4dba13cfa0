"""The C side: the structs of include/taskmgr.h, the prototypes of the
functions the binding calls, finding and loading libtaskmgr, and turning
Python values into C arguments."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import threading
from typing import Any, Dict, List, Optional, Tuple, Type, Union

from ._errors import _BY_CODE, TaskmgrError, WrongDataType

# The ABI this module is written for: soname libtaskmgr.so.0, and the
# version of each options struct it mirrors (include/taskmgr.h).
_SONAME = "libtaskmgr.so.0"
_ABI_MAJOR = "0"
_TM_OPTIONS_VERSION = 2
_TM_JOB_DEF_VERSION = 2

_TM_PUBLIC = 0x1
_TM_OPEN_NOSYNC = 0x1
_TM_JOB_PUBLIC = 0x1
_TM_JOB_EXCLUSIVE = 0x2

# tm_status values a handler may return.
_TM_FAILED = 3
_RESULTS = {"FAILED": 3, "CANCELLED": 4, "COMPLETED": 5}

_UINT_MAX = 2 ** 32 - 1
_UINT64_MAX = 2 ** 64 - 1
_INT_MIN, _INT_MAX = -2 ** 31, 2 ** 31 - 1

# A file system path, as os.fspath() takes it.
StrPath = Union[str, "os.PathLike[str]"]


# --------------------------------------------------------------------------
# The C structs, field for field as in include/taskmgr.h (tm_options
# version 2, tm_job_def version 2).

class _Options(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint),
        ("path", ctypes.c_char_p),
        ("workers", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("map_size", ctypes.c_uint64),
        ("map_size_max", ctypes.c_uint64),
        ("poll_ms", ctypes.c_uint),
        ("lease_ms", ctypes.c_uint),
        ("grace_ms", ctypes.c_uint),
        ("progress_ms", ctypes.c_uint),
        ("keep_count", ctypes.c_uint),
        ("keep_age_s", ctypes.c_double),
        ("max_task_bytes", ctypes.c_uint64),
        ("max_details_bytes", ctypes.c_uint64),
        ("max_keys", ctypes.c_uint),
        ("max_list_bytes", ctypes.c_uint64),
    ]


# tm_status (*run)(tm_job *job, void *user); tm_status is an int-sized enum.
_RUN_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
# int (*validate)(const char *context_json, void *user)
_VALIDATE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class _JobDef(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint),
        ("name", ctypes.c_char_p),
        ("flags", ctypes.c_uint),
        ("run", _RUN_FN),
        ("validate", _VALIDATE_FN),
        ("user", ctypes.c_void_p),
        ("timeout_s", ctypes.c_double),
        ("max_attempts", ctypes.c_uint),
        ("retry_backoff_s", ctypes.c_double),
        ("concurrency", ctypes.c_uint),
        ("interval_s", ctypes.c_double),
        ("change_threshold", ctypes.c_uint64),
        ("min_interval_s", ctypes.c_double),
        # version 2
        ("cron", ctypes.c_char_p),
        ("cron_tz", ctypes.c_char_p),
        ("then", ctypes.c_char_p),
        ("rate_per_s", ctypes.c_double),
        ("burst", ctypes.c_uint),
    ]


# tm_*_init() is asked for the version above, so it writes and the library
# later reads only the fields we declare; the room is a guard that tests
# check stays untouched.
class _OptionsRoom(ctypes.Structure):
    _fields_ = [("s", _Options), ("_room", ctypes.c_ubyte * 512)]


class _JobDefRoom(ctypes.Structure):
    _fields_ = [("s", _JobDef), ("_room", ctypes.c_ubyte * 512)]


# tm_job_def fields register() accepts as keywords, with their C kinds
# ("text": a string the library copies).
_MORE_FIELDS = {
    "max_attempts": "uint",
    "retry_backoff_s": "double",
    "concurrency": "uint",
    "interval_s": "double",
    "change_threshold": "uint64",
    "min_interval_s": "double",
    "cron": "text",
    "cron_tz": "text",
    "then": "text",
    "rate_per_s": "double",
    "burst": "uint",
}


# --------------------------------------------------------------------------
# Loading the library

_P = ctypes.c_void_p
_OUT = ctypes.POINTER(ctypes.c_void_p)

_PROTOTYPES: Dict[str, Tuple[Any, List[Any]]] = {
    # name: (restype, argtypes); variadic functions list their fixed part.
    "tm_options_init": (ctypes.c_int, [ctypes.POINTER(_Options), ctypes.c_uint]),
    "tm_open": (ctypes.c_int, [ctypes.POINTER(_Options), _OUT]),
    "tm_close": (None, [_P]),
    "tm_job_def_init": (ctypes.c_int, [ctypes.POINTER(_JobDef), ctypes.c_uint]),
    "tm_register": (ctypes.c_int, [_P, ctypes.POINTER(_JobDef)]),
    "tm_trigger": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_char_p,
                                  ctypes.c_uint, _OUT]),
    "tm_trigger_many": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_char_p,
                                       ctypes.c_uint, _OUT]),
    "tm_list_recent": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int,
                                      ctypes.c_int, ctypes.c_uint, _OUT]),
    "tm_get": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.c_uint, _OUT]),
    "tm_patch": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_char_p,
                                ctypes.c_char_p, _OUT]),
    "tm_cancel": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_char_p, _OUT]),
    "tm_notify": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_uint64]),
    "tm_stats": (ctypes.c_int, [_P, _OUT]),
    "tm_check": (ctypes.c_int, [_P, _OUT]),
    "tm_metrics": (ctypes.c_int, [_P, _OUT]),
    "tm_retry": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_char_p, _OUT]),
    "tm_pause": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "tm_resume": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "tm_free": (None, [_P]),
    "tm_error_name": (ctypes.c_char_p, [ctypes.c_int]),
    "tm_error_class": (ctypes.c_char_p, [ctypes.c_int]),
    "tm_status_name": (ctypes.c_char_p, [ctypes.c_int]),
    "tm_last_error": (ctypes.c_char_p, []),
    "tm_errorf": (ctypes.c_int, [ctypes.c_int, ctypes.c_char_p]),
    "tm_version": (ctypes.c_char_p, []),
    "tm_job_task_id": (ctypes.c_char_p, [_P]),
    "tm_job_name": (ctypes.c_char_p, [_P]),
    "tm_job_payload": (ctypes.c_char_p, [_P]),
    "tm_job_secret": (ctypes.c_char_p, [_P]),
    "tm_job_attempt": (ctypes.c_uint, [_P]),
    "tm_job_progress": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "tm_job_message": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "tm_job_warn": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "tm_job_cancelled": (ctypes.c_int, [_P]),
    "tm_job_fail": (ctypes.c_int, [_P, ctypes.c_char_p]),
    "tm_job_output": (ctypes.c_int, [_P, ctypes.c_char_p]),
}

_libs: Dict[str, ctypes.CDLL] = {}
_libs_lock = threading.Lock()


def _prepare(cdll: ctypes.CDLL) -> ctypes.CDLL:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(cdll, name)
        fn.restype = restype
        fn.argtypes = argtypes
    version = cdll.tm_version().decode()
    if version.split(".")[0] != _ABI_MAJOR:
        raise OSError("libtaskmgr %s is not ABI %s, which this binding was "
                      "written for" % (version, _ABI_MAJOR))
    return cdll


def _candidates(library: Optional[StrPath] = None) -> List[str]:
    """What _load() tries, in order: the ``library`` argument, else
    $TASKMGR_LIBRARY (either one alone: an explicit path that does not load
    is an error, not a reason to look elsewhere), else the dynamic loader's
    search (libtaskmgr.so.0, which honours LD_LIBRARY_PATH and ldconfig's
    cache), then ctypes.util.find_library("taskmgr")."""
    explicit = library if library is not None else os.environ.get("TASKMGR_LIBRARY")
    if explicit:
        return [os.fspath(explicit)]
    candidates = [_SONAME]
    found = ctypes.util.find_library("taskmgr")
    if found and found != _SONAME:
        candidates.append(found)
    return candidates


def _load(library: Optional[StrPath] = None) -> ctypes.CDLL:
    """The CDLL for `library`, TASKMGR_LIBRARY or the system's search path."""
    candidates = _candidates(library)
    with _libs_lock:
        for c in candidates:
            if c in _libs:
                return _libs[c]
        errors = []
        for c in candidates:
            try:
                cdll = ctypes.CDLL(c)
            except OSError as e:
                errors.append(str(e))
                continue
            _libs[c] = _prepare(cdll)
            return _libs[c]
    raise OSError("cannot load libtaskmgr (tried %s): %s; pass library= or set "
                  "TASKMGR_LIBRARY to the path of libtaskmgr.so"
                  % (", ".join(candidates), "; ".join(errors)))


def _error(lib: ctypes.CDLL, err: int) -> TaskmgrError:
    """The exception for tm_error `err`, with this thread's last message."""
    message = (lib.tm_last_error() or b"").decode("utf-8", "replace")
    name = (lib.tm_error_name(err) or b"").decode()
    cls = (lib.tm_error_class(err) or b"").decode()
    return _BY_CODE.get(err, TaskmgrError)(message, name, cls, err)


# --------------------------------------------------------------------------
# Python values as C arguments

def _text(value: Union[str, bytes], what: str) -> bytes:
    """A str (or bytes) argument as a C string; NUL would silently cut it."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, bytes):
        raise TypeError("%s must be a str, not %s" % (what, type(value).__name__))
    if b"\0" in value:
        raise WrongDataType("%s contains a NUL character" % what)
    return value


def _document(value: Any, what: str) -> Optional[bytes]:
    """A dict (or already-encoded JSON text) as JSON bytes, or None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        return _text(value, what)
    try:
        return json.dumps(value, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise WrongDataType("%s is not JSON: %s" % (what, e)) from None


def _int(value: int, what: str, lo: int, hi: int,
         exc: Type[TaskmgrError] = WrongDataType) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (what, type(value).__name__))
    if not lo <= value <= hi:
        raise exc("%s must be in %d..%d" % (what, lo, hi))
    return value


def _message(text: object) -> bytes:
    """Text for a "%s" argument: str() of anything, NUL made visible."""
    return str(text).replace("\0", "\\0").encode("utf-8", "replace")
