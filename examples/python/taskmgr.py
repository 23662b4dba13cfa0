"""taskmgr: the Python binding of libtaskmgr, over ctypes (no compile step).

    import taskmgr

    def retrain(job):
        for step in range(10):
            if job.cancelled():
                return "CANCELLED"
            job.progress({"step": step})
            job.message("step %d of 10" % step)
        return "COMPLETED"

    with taskmgr.Manager("./var/tasks") as m:
        m.register("ml_model_retrain", run=retrain, public=True, exclusive=True)
        task_id = m.trigger("ml_model_retrain")["task_id"]
        print(m.get("ml_model_retrain", task_id))

The library is looked up in this order: the ``library`` argument of
Manager, the environment variable TASKMGR_LIBRARY, then the system's search
path (``libtaskmgr.so.0``, then ctypes.util.find_library).  Every call that
fails raises a TaskmgrError subclass named after the library's error name,
with ``.error_name``, ``.error_class`` and the library's message.  See
doc/python.md for the whole interface.
"""

import atexit
import ctypes
import ctypes.util
import json
import logging
import os
import threading
import weakref

__all__ = [
    "Manager", "Job",
    "TaskmgrError", "WrongDataType", "LowerStatusNotAllowed",
    "TaskAlreadyRunning", "TaskNotFound", "TableNotFound", "ResourceNotFound",
    "StorageError", "OutOfMemory", "InvalidArgument",
]

__version__ = "0.1.0"

_log = logging.getLogger("taskmgr")

# The ABI this module is written for: soname libtaskmgr.so.0, and the first
# version of each options struct (include/taskmgr.h).
_SONAME = "libtaskmgr.so.0"
_ABI_MAJOR = "0"
_TM_OPTIONS_VERSION = 1
_TM_JOB_DEF_VERSION = 1

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


# --------------------------------------------------------------------------
# Errors

class TaskmgrError(Exception):
    """A failed libtaskmgr call.

    ``code`` is the tm_error value (negative), ``error_name`` the library's
    name for it (``"WRONG_DATA_TYPE"``), ``error_class`` the REST API's error
    class (``"WrongData"``) and ``message`` (also ``str(e)``) the library's
    message for the failure.
    """

    code = None
    error_name = "UNKNOWN_ERROR"
    error_class = "ServerError"

    def __init__(self, message="", error_name=None, error_class=None, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if error_name is not None:
            self.error_name = error_name
        if error_class is not None:
            self.error_class = error_class

    def __str__(self):
        return self.message or self.error_name


class WrongDataType(TaskmgrError):
    """WRONG_DATA_TYPE: bad input, or a name that is not registered."""
    code, error_name, error_class = -1, "WRONG_DATA_TYPE", "WrongData"


class LowerStatusNotAllowed(TaskmgrError):
    """LOWER_STATUS_NOT_ALLOWED: a status change the ordering rule forbids."""
    code, error_name, error_class = -2, "LOWER_STATUS_NOT_ALLOWED", "WrongData"


class TaskAlreadyRunning(TaskmgrError):
    """TASK_ALREADY_RUNNING: an exclusive name already has an active task."""
    code, error_name, error_class = -3, "TASK_ALREADY_RUNNING", "DuplicatedError"


class TaskNotFound(TaskmgrError):
    """TASK_NOT_FOUND: no task of that name has that id."""
    code, error_name, error_class = -4, "TASK_NOT_FOUND", "NotFoundError"


class TableNotFound(TaskmgrError):
    """TABLE_NOT_FOUND: raised by validate hooks."""
    code, error_name, error_class = -5, "TABLE_NOT_FOUND", "NotFoundError"


class ResourceNotFound(TaskmgrError):
    """RESOURCE_NOT_FOUND: raised by validate hooks."""
    code, error_name, error_class = -6, "RESOURCE_NOT_FOUND", "NotFoundError"


class StorageError(TaskmgrError):
    """STORAGE_ERROR: disk full, map cap reached, I/O error."""
    code, error_name, error_class = -7, "STORAGE_ERROR", "ServerError"


class OutOfMemory(TaskmgrError):
    """OUT_OF_MEMORY."""
    code, error_name, error_class = -8, "OUT_OF_MEMORY", "ServerError"


class InvalidArgument(TaskmgrError):
    """INVALID_ARGUMENT: API misuse (a closed manager, bad options, a name
    registered twice, a job used after its handler returned)."""
    code, error_name, error_class = -9, "INVALID_ARGUMENT", "ServerError"


_BY_CODE = {cls.code: cls for cls in (
    WrongDataType, LowerStatusNotAllowed, TaskAlreadyRunning, TaskNotFound,
    TableNotFound, ResourceNotFound, StorageError, OutOfMemory, InvalidArgument)}

# What a validate hook may answer (include/taskmgr.h, tm_job_def.validate).
_VALIDATE_CODES = (WrongDataType.code, TableNotFound.code, ResourceNotFound.code)


# --------------------------------------------------------------------------
# The C structs, field for field as in include/taskmgr.h (version 1 of each).

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
    ]


# tm_*_init() is asked for the version above, so it writes and the library
# later reads only the fields we declare; the room is a guard that tests
# check stays untouched.
class _OptionsRoom(ctypes.Structure):
    _fields_ = [("s", _Options), ("_room", ctypes.c_ubyte * 512)]


class _JobDefRoom(ctypes.Structure):
    _fields_ = [("s", _JobDef), ("_room", ctypes.c_ubyte * 512)]


# tm_job_def fields register() accepts as keywords, with their C kinds.
_MORE_FIELDS = {
    "max_attempts": "uint",
    "retry_backoff_s": "double",
    "concurrency": "uint",
    "interval_s": "double",
    "change_threshold": "uint64",
    "min_interval_s": "double",
}


# --------------------------------------------------------------------------
# Loading the library

_P = ctypes.c_void_p
_OUT = ctypes.POINTER(ctypes.c_void_p)

_PROTOTYPES = {
    # name: (restype, argtypes); variadic functions list their fixed part.
    "tm_options_init": (ctypes.c_int, [ctypes.POINTER(_Options), ctypes.c_uint]),
    "tm_open": (ctypes.c_int, [ctypes.POINTER(_Options), _OUT]),
    "tm_close": (None, [_P]),
    "tm_job_def_init": (ctypes.c_int, [ctypes.POINTER(_JobDef), ctypes.c_uint]),
    "tm_register": (ctypes.c_int, [_P, ctypes.POINTER(_JobDef)]),
    "tm_trigger": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_char_p,
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
}

_libs = {}
_libs_lock = threading.Lock()


def _prepare(cdll):
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(cdll, name)
        fn.restype = restype
        fn.argtypes = argtypes
    version = cdll.tm_version().decode()
    if version.split(".")[0] != _ABI_MAJOR:
        raise OSError("libtaskmgr %s is not ABI %s, which this binding was "
                      "written for" % (version, _ABI_MAJOR))
    return cdll


def _load(library=None):
    """The CDLL for `library`, TASKMGR_LIBRARY or the system's search path."""
    explicit = library if library is not None else os.environ.get("TASKMGR_LIBRARY")
    if explicit:
        candidates = [os.fspath(explicit)]
    else:
        candidates = [_SONAME]
        found = ctypes.util.find_library("taskmgr")
        if found and found != _SONAME:
            candidates.append(found)
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


def _error(lib, err):
    """The exception for tm_error `err`, with this thread's last message."""
    message = (lib.tm_last_error() or b"").decode("utf-8", "replace")
    name = (lib.tm_error_name(err) or b"").decode()
    cls = (lib.tm_error_class(err) or b"").decode()
    return _BY_CODE.get(err, TaskmgrError)(message, name, cls, err)


def _text(value, what):
    """A str (or bytes) argument as a C string; NUL would silently cut it."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif not isinstance(value, bytes):
        raise TypeError("%s must be a str, not %s" % (what, type(value).__name__))
    if b"\0" in value:
        raise WrongDataType("%s contains a NUL character" % what)
    return value


def _document(value, what):
    """A dict (or already-encoded JSON text) as JSON bytes, or None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        return _text(value, what)
    try:
        return json.dumps(value, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise WrongDataType("%s is not JSON: %s" % (what, e)) from None


def _int(value, what, lo, hi, exc=WrongDataType):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (what, type(value).__name__))
    if not lo <= value <= hi:
        raise exc("%s must be in %d..%d" % (what, lo, hi))
    return value


def _message(text):
    """Text for a "%s" argument: str() of anything, NUL made visible."""
    return str(text).replace("\0", "\\0").encode("utf-8", "replace")


# --------------------------------------------------------------------------
# Handlers

_in_handler = threading.local()


class Job:
    """A running task, as its handler sees it.

    Valid only until the handler returns; afterwards every method raises
    InvalidArgument.  The methods may be called from the handler's thread or
    from threads the handler waits for.
    """

    __slots__ = ("_lib", "_ptr", "task_id", "name", "payload", "secret", "attempt")

    def __init__(self, lib, ptr):
        self._lib = lib
        self._ptr = ptr
        #: The task's id (20 characters).
        self.task_id = lib.tm_job_task_id(ptr).decode()
        #: The task's name.
        self.name = lib.tm_job_name(ptr).decode()
        #: The trigger's ``context_task``, as a dict ({} when absent).
        self.payload = json.loads(lib.tm_job_payload(ptr) or b"{}")
        secret = lib.tm_job_secret(ptr)
        #: The trigger's ``refresh_token``, or None.  Never stored.
        self.secret = secret.decode("utf-8", "replace") if secret is not None else None
        #: This run's attempt number, from 1.
        self.attempt = lib.tm_job_attempt(ptr)

    def _job(self):
        if self._ptr is None:
            raise InvalidArgument("the job of task %s is over: its handler returned"
                                  % self.task_id)
        return self._ptr

    def _check(self, err):
        if err:
            raise _error(self._lib, err)

    def progress(self, progress):
        """Merge the dict `progress` into ``details.progress`` (RFC 7396:
        None deletes a key).  Coalesced by the library: cheap in a loop."""
        self._check(self._lib.tm_job_progress(self._job(), _document(progress, "progress")))

    def message(self, text):
        """Set ``details.progress.message`` (the task's ``progress``)."""
        self._check(self._lib.tm_job_message(self._job(), b"%s",
                                             ctypes.c_char_p(_message(text))))

    def warn(self, text):
        """Append `text` to the task's ``warnings``."""
        self._check(self._lib.tm_job_warn(self._job(), b"%s",
                                          ctypes.c_char_p(_message(text))))

    def cancelled(self):
        """True once the task should stop: cancel requested, timed out,
        lease lost or the manager closing."""
        return bool(self._lib.tm_job_cancelled(self._job()))

    def __repr__(self):
        return "<taskmgr.Job %s %s attempt %d>" % (self.name, self.task_id, self.attempt)


class _Handlers:
    """What the C callbacks need, kept apart from the Manager so that they
    do not keep it alive: the library, and how many handlers are running."""

    def __init__(self, lib):
        self.lib = lib
        self.lock = threading.Lock()
        self.running = 0
        self.callbacks = []   # ctypes function objects: must outlive their use

    def run_callback(self, run):
        lib = self.lib

        def trampoline(ptr, user):
            with self.lock:
                self.running += 1
            outer = getattr(_in_handler, "active", False)
            _in_handler.active = True
            job = None
            try:
                job = Job(lib, ptr)
                result = run(job)
                status = _RESULTS.get(result) if isinstance(result, str) else None
                if status is None:
                    return lib.tm_job_fail(ptr, b"%s", ctypes.c_char_p(_message(
                        "handler returned %r; expected 'COMPLETED', 'FAILED' "
                        "or 'CANCELLED'" % (result,))))
                return status
            except BaseException as e:  # never let an exception reach C
                try:
                    _log.error("handler of %s raised", job.name if job else "?",
                               exc_info=True)
                    return lib.tm_job_fail(ptr, b"%s", ctypes.c_char_p(
                        _message(str(e) or type(e).__name__)))
                except BaseException:
                    return _TM_FAILED
            finally:
                if job is not None:
                    job._ptr = None
                _in_handler.active = outer
                with self.lock:
                    self.running -= 1

        cb = _RUN_FN(trampoline)
        self.callbacks.append(cb)
        return cb

    def validate_callback(self, validate):
        lib = self.lib

        def trampoline(context_json, user):
            # Runs inside trigger(), which close() would wait for.
            outer = getattr(_in_handler, "active", False)
            _in_handler.active = True
            try:
                validate(json.loads(context_json or b"{}"))
                return 0
            except TaskmgrError as e:
                code = e.code if e.code in _VALIDATE_CODES else WrongDataType.code
                try:
                    return lib.tm_errorf(code, b"%s", ctypes.c_char_p(
                        _message(e.message or e.error_name)))
                except BaseException:
                    return code
            except BaseException as e:
                try:
                    _log.info("validate hook raised", exc_info=True)
                    return lib.tm_errorf(WrongDataType.code, b"%s", ctypes.c_char_p(
                        _message("%s: %s" % (type(e).__name__, e))))
                except BaseException:
                    return WrongDataType.code
            finally:
                _in_handler.active = outer

        cb = _VALIDATE_FN(trampoline)
        self.callbacks.append(cb)
        return cb


# Managers still open, closed at interpreter exit while the handlers' Python
# code can still run; handlers that outlived tm_close() keep their callbacks
# here forever.
_open = weakref.WeakSet()
_retired = []


@atexit.register
def _close_all():
    for m in list(_open):
        try:
            m.close()
        except Exception:
            pass


# --------------------------------------------------------------------------
# The manager

class Manager:
    """An open task store plus its worker threads (tm_open).

    ``path`` is the store directory, created if missing; ``workers`` the
    number of worker threads (0: this process only stores and serves);
    ``nosync`` skips fsync (tests and benchmarks only); ``library`` the path
    of libtaskmgr.so to use.  Every method is thread-safe; use it as a
    context manager, or call close().
    """

    def __init__(self, path, workers=2, nosync=False, library=None):
        self._tm = None
        self._lib = lib = _load(library)
        self._cond = threading.Condition()
        self._busy = 0
        self._closing = False
        self._handlers = _Handlers(lib)
        room = _OptionsRoom()
        opts = room.s
        err = lib.tm_options_init(ctypes.byref(opts), _TM_OPTIONS_VERSION)
        if err:
            raise _error(lib, err)
        opts.path = os.fsencode(path)
        opts.workers = _int(workers, "workers", 0, _UINT_MAX, InvalidArgument)
        opts.flags = _TM_OPEN_NOSYNC if nosync else 0
        tm = ctypes.c_void_p()
        err = lib.tm_open(ctypes.byref(opts), ctypes.byref(tm))
        if err:
            raise _error(lib, err)
        self._tm = tm
        self.path = os.fspath(path)
        _open.add(self)

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        """Stop taking tasks, tell running handlers to stop, wait for them
        (up to the library's grace period) and close the store.  Waits for
        calls in progress on other threads; later calls raise
        InvalidArgument.  A second close() does nothing.  Not from a handler."""
        if getattr(_in_handler, "active", False):
            raise InvalidArgument("close() called from a handler or validate hook")
        with self._cond:
            if self._closing:
                while self._tm is not None:
                    self._cond.wait()
                return
            self._closing = True
            while self._busy:
                self._cond.wait()
            tm = self._tm
        try:
            self._lib.tm_close(tm)
        finally:
            with self._handlers.lock:
                if self._handlers.running:
                    # Handlers the library gave up waiting for still run
                    # through these callbacks.
                    _retired.append(self._handlers)
            with self._cond:
                self._tm = None
                self._cond.notify_all()
            _open.discard(self)

    @property
    def closed(self):
        return self._tm is None

    def __del__(self):
        try:
            if self._tm is None or self._closing:
                return
            if getattr(_in_handler, "active", False):
                # Collected on a worker thread: closing here would wait for
                # this very handler.  Leave it to interpreter exit.
                _retired.append(self)
                _open.discard(self)
                atexit.register(self.close)
                return
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return "<taskmgr.Manager %r%s>" % (getattr(self, "path", "?"),
                                           " closed" if self._tm is None else "")

    # -- plumbing ----------------------------------------------------------

    def _enter(self):
        with self._cond:
            if self._closing or self._tm is None:
                raise InvalidArgument("the manager is closed")
            self._busy += 1
            return self._tm

    def _leave(self):
        with self._cond:
            self._busy -= 1
            if not self._busy:
                self._cond.notify_all()

    def _call(self, fn, *args, out=True):
        """Call fn(tm, *args[, &out]); the parsed JSON output, or raise."""
        lib = self._lib
        tm = self._enter()
        try:
            if not out:
                err = fn(tm, *args)
                if err:
                    raise _error(lib, err)
                return None
            res = ctypes.c_void_p()
            err = fn(tm, *args, ctypes.byref(res))
            if err:
                raise _error(lib, err)
        finally:
            self._leave()
        try:
            text = ctypes.string_at(res.value) if res.value else b"null"
        finally:
            lib.tm_free(res)
        return json.loads(text.decode("utf-8", "replace"))

    # -- registry ----------------------------------------------------------

    def register(self, name, run=None, public=False, exclusive=False,
                 timeout_s=None, validate=None, **more):
        """Register task name `name` (tm_register).

        ``run(job)`` is the handler, called on a worker thread with a Job;
        it returns "COMPLETED", "FAILED" or "CANCELLED".  An exception it
        raises ends the task FAILED with the exception's message in
        ``details.error``.  None: an external worker drives the tasks with
        patch().  ``validate(context_task)`` is called by trigger() before
        anything is stored: returning means accepted; raising WrongDataType,
        TableNotFound or ResourceNotFound refuses the trigger with that
        error and message (any other exception: WrongDataType).  ``public``,
        ``exclusive``, ``timeout_s`` and the keywords max_attempts,
        retry_backoff_s, concurrency, interval_s, change_threshold,
        min_interval_s set the tm_job_def fields of the same names; None
        keeps the library's default.
        """
        unknown = sorted(set(more) - set(_MORE_FIELDS))
        if unknown:
            raise TypeError("register() got unexpected keyword argument(s) %s"
                            % ", ".join(unknown))
        if run is not None and not callable(run):
            raise TypeError("run must be callable or None")
        if validate is not None and not callable(validate):
            raise TypeError("validate must be callable or None")
        room = _JobDefRoom()
        d = room.s
        err = self._lib.tm_job_def_init(ctypes.byref(d), _TM_JOB_DEF_VERSION)
        if err:
            raise _error(self._lib, err)
        d.name = _text(name, "name")
        d.flags = (_TM_JOB_PUBLIC if public else 0) | (_TM_JOB_EXCLUSIVE if exclusive else 0)
        fields = dict(more, timeout_s=timeout_s)
        for field, value in fields.items():
            if value is None:
                continue
            kind = _MORE_FIELDS.get(field, "double")
            if kind == "double":
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError("%s must be a number" % field)
                setattr(d, field, float(value))
            else:
                hi = _UINT64_MAX if kind == "uint64" else _UINT_MAX
                setattr(d, field, _int(value, field, 0, hi, InvalidArgument))
        run_cb = self._handlers.run_callback(run) if run is not None else None
        validate_cb = (self._handlers.validate_callback(validate)
                       if validate is not None else None)
        if run_cb is not None:
            d.run = run_cb
        if validate_cb is not None:
            d.validate = validate_cb
        self._call(self._lib.tm_register, ctypes.byref(d), out=False)

    # -- the five calls ----------------------------------------------------

    def trigger(self, name, body=None, public=False):
        """Create a task (tm_trigger).  ``body`` is None or the REST body
        ``{"context_task": {...}, "refresh_token": "...", "create_reason":
        "..."}`` as a dict (or JSON text).  Returns ``{"task_id": ...}``."""
        return self._call(self._lib.tm_trigger, _text(name, "name"),
                          _document(body, "body"), _TM_PUBLIC if public else 0)

    def list_recent(self, name, page=1, amt=50, public=False):
        """Tasks of `name`, newest first (tm_list_recent): ``{"has_next":
        bool, "next_page": int, "tasks": [...]}``."""
        return self._call(self._lib.tm_list_recent, _text(name, "name"),
                          _int(page, "page", _INT_MIN, _INT_MAX),
                          _int(amt, "amt", _INT_MIN, _INT_MAX),
                          _TM_PUBLIC if public else 0)

    def get(self, name, task_id, public=False):
        """One task (tm_get), as a dict."""
        return self._call(self._lib.tm_get, _text(name, "name"),
                          _text(task_id, "task_id"), _TM_PUBLIC if public else 0)

    def patch(self, name, task_id, patch):
        """Update a task as an external worker would (tm_patch); ``patch``
        is a dict (or JSON text) with any of status, details, completed,
        failed.  Returns the updated task (private view)."""
        return self._call(self._lib.tm_patch, _text(name, "name"),
                          _text(task_id, "task_id"), _document(patch, "patch"))

    def cancel(self, name, task_id):
        """Cancel a task (tm_cancel); returns it after the call."""
        return self._call(self._lib.tm_cancel, _text(name, "name"),
                          _text(task_id, "task_id"))

    # -- automatic triggers and figures ------------------------------------

    def notify(self, name, n):
        """Add `n` changes to the durable change counter of `name`
        (tm_notify), then read what the library reports for the name: its
        entry of tm_stats after the call, ``stats()["names"][name]``, a dict
        ``{"REQUEST_SENT": n, ..., "COMPLETED": n, "total": n, "changes":
        n}`` where ``changes`` is the counter since the name's last task."""
        n = _int(n, "n", 0, _UINT64_MAX)
        self._call(self._lib.tm_notify, _text(name, "name"), n, out=False)
        return self.stats()["names"][name]

    def stats(self):
        """Figures of the store (tm_stats), as a dict."""
        return self._call(self._lib.tm_stats)

    def check(self):
        """Consistency check of the store's indexes (tm_check):
        ``{"ok": bool, "tasks": n, "problems": [...]}``."""
        return self._call(self._lib.tm_check)
