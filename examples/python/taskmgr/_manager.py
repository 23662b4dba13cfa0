"""Manager (an open store and its workers) and Job (a running task, as its
handler sees it)."""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import threading
import time
import weakref
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional,
                    Set, Union)

from ._errors import (_VALIDATE_CODES, InvalidArgument, TaskmgrError,
                      WrongDataType)
from ._native import (_INT_MAX, _INT_MIN, _MORE_FIELDS,
                      _RESULTS, _RUN_FN, _TM_FAILED, _TM_JOB_DEF_VERSION,
                      _TM_JOB_EXCLUSIVE, _TM_JOB_PUBLIC, _TM_OPEN_NOSYNC,
                      _TM_OPTIONS_VERSION, _TM_PUBLIC, _UINT64_MAX, _UINT_MAX,
                      _VALIDATE_FN, StrPath, _document, _error, _int,
                      _JobDefRoom, _load, _message, _OptionsRoom, _text)

_log = logging.getLogger("taskmgr")

#: A task document, as tm_get() returns it (doc/contract.md).
Task = Dict[str, Any]
#: A request body or patch: a dict turned into JSON, or JSON text as is.
Document = Union[Mapping[str, Any], str, bytes]
#: A handler: called with the Job, returns "COMPLETED", "FAILED" or "CANCELLED".
Handler = Callable[["Job"], str]
#: A validate hook: called with the trigger's context_task; raising refuses it.
Validator = Callable[[Dict[str, Any]], object]

#: The statuses a task ends in.
FINAL_STATUSES = frozenset(("COMPLETED", "FAILED", "CANCELLED"))

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

    task_id: str
    name: str
    payload: Dict[str, Any]
    secret: Optional[str]
    attempt: int

    def __init__(self, lib: ctypes.CDLL, ptr: Optional[int]) -> None:
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

    def _job(self) -> int:
        if self._ptr is None:
            raise InvalidArgument("the job of task %s is over: its handler returned"
                                  % self.task_id)
        return self._ptr

    def _check(self, err: int) -> None:
        if err:
            raise _error(self._lib, err)

    def progress(self, progress: Mapping[str, Any]) -> None:
        """Merge the dict `progress` into ``details.progress`` (RFC 7396:
        None deletes a key).  Coalesced by the library: cheap in a loop."""
        self._check(self._lib.tm_job_progress(self._job(), _document(progress, "progress")))

    def message(self, text: object) -> None:
        """Set ``details.progress.message`` (the task's ``progress``)."""
        self._check(self._lib.tm_job_message(self._job(), b"%s",
                                             ctypes.c_char_p(_message(text))))

    def warn(self, text: object) -> None:
        """Append `text` to the task's ``warnings``."""
        self._check(self._lib.tm_job_warn(self._job(), b"%s",
                                          ctypes.c_char_p(_message(text))))

    def output(self, output: Mapping[str, Any]) -> None:
        """Set ``details.output`` to the dict `output`, replacing any set
        before; written with the final status.  When the task COMPLETES and
        its name was registered with ``then=``, the next task gets it as its
        ``context_task``.  Each attempt starts without one."""
        self._check(self._lib.tm_job_output(self._job(), _document(output, "output")))

    def cancelled(self) -> bool:
        """True once the task should stop: cancel requested, timed out,
        lease lost or the manager closing."""
        return bool(self._lib.tm_job_cancelled(self._job()))

    def __repr__(self) -> str:
        return "<taskmgr.Job %s %s attempt %d>" % (self.name, self.task_id, self.attempt)


class _Handlers:
    """What the C callbacks need, kept apart from the Manager so that they
    do not keep it alive: the library, and how many handlers are running."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.lock = threading.Lock()
        self.running = 0
        self.callbacks: List[Any] = []   # ctypes function objects: must outlive their use

    def run_callback(self, run: Handler) -> Any:
        lib = self.lib

        def trampoline(ptr: Optional[int], user: Optional[int]) -> int:
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
                    return int(lib.tm_job_fail(ptr, b"%s", ctypes.c_char_p(_message(
                        "handler returned %r; expected 'COMPLETED', 'FAILED' "
                        "or 'CANCELLED'" % (result,)))))
                return status
            except BaseException as e:  # never let an exception reach C
                try:
                    _log.error("handler of %s raised", job.name if job else "?",
                               exc_info=True)
                    return int(lib.tm_job_fail(ptr, b"%s", ctypes.c_char_p(
                        _message(str(e) or type(e).__name__))))
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

    def validate_callback(self, validate: Validator) -> Any:
        lib = self.lib

        def trampoline(context_json: Optional[bytes], user: Optional[int]) -> int:
            # Runs inside trigger(), which close() would wait for.
            outer = getattr(_in_handler, "active", False)
            _in_handler.active = True
            try:
                validate(json.loads(context_json or b"{}"))
                return 0
            except TaskmgrError as e:
                code = e.code if e.code in _VALIDATE_CODES else WrongDataType.code
                assert code is not None
                try:
                    return int(lib.tm_errorf(code, b"%s", ctypes.c_char_p(
                        _message(e.message or e.error_name))))
                except BaseException:
                    return code
            except BaseException as e:
                try:
                    _log.info("validate hook raised", exc_info=True)
                    return int(lib.tm_errorf(WrongDataType.code, b"%s", ctypes.c_char_p(
                        _message("%s: %s" % (type(e).__name__, e)))))
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
_open: "weakref.WeakSet[Manager]" = weakref.WeakSet()
_retired: List[Any] = []


@atexit.register
def _close_all() -> None:
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
    of libtaskmgr.so to use (else $TASKMGR_LIBRARY, else the system's
    search path); ``max_task_bytes``, ``max_details_bytes``, ``max_keys``
    and ``max_list_bytes`` the limits of tm_options (0: the default).  Every method is thread-safe; use it as a context manager,
    or call close().
    """

    path: str

    def __init__(self, path: StrPath, workers: int = 2, nosync: bool = False,
                 library: Optional[StrPath] = None, *,
                 max_task_bytes: int = 0, max_details_bytes: int = 0,
                 max_keys: int = 0, max_list_bytes: int = 0) -> None:
        self._tm: Optional[ctypes.c_void_p] = None
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
        # The limits (0: the library's default; doc/reliability.md).
        opts.max_task_bytes = _int(max_task_bytes, "max_task_bytes", 0,
                                   _UINT64_MAX, InvalidArgument)
        opts.max_details_bytes = _int(max_details_bytes, "max_details_bytes", 0,
                                      _UINT64_MAX, InvalidArgument)
        opts.max_keys = _int(max_keys, "max_keys", 0, _UINT_MAX, InvalidArgument)
        opts.max_list_bytes = _int(max_list_bytes, "max_list_bytes", 0,
                                   _UINT64_MAX, InvalidArgument)
        tm = ctypes.c_void_p()
        err = lib.tm_open(ctypes.byref(opts), ctypes.byref(tm))
        if err:
            raise _error(lib, err)
        self._tm = tm
        self.path = os.fspath(path)
        _open.add(self)

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> "Manager":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
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
    def closed(self) -> bool:
        """True once close() has returned."""
        return self._tm is None

    def __del__(self) -> None:
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

    def __repr__(self) -> str:
        return "<taskmgr.Manager %r%s>" % (getattr(self, "path", "?"),
                                           " closed" if self._tm is None else "")

    # -- plumbing ----------------------------------------------------------

    def _enter(self) -> ctypes.c_void_p:
        with self._cond:
            if self._closing or self._tm is None:
                raise InvalidArgument("the manager is closed")
            self._busy += 1
            return self._tm

    def _leave(self) -> None:
        with self._cond:
            self._busy -= 1
            if not self._busy:
                self._cond.notify_all()

    def _call(self, fn: Any, *args: Any, out: bool = True, text: bool = False) -> Any:
        """Call fn(tm, *args[, &out]); the parsed JSON output (its text
        with ``text``), or raise."""
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
            raw = ctypes.string_at(res.value) if res.value else b"null"
        finally:
            lib.tm_free(res)
        if text:
            return raw.decode("utf-8", "replace")
        return json.loads(raw.decode("utf-8", "replace"))

    # -- registry ----------------------------------------------------------

    def register(self, name: str, run: Optional[Handler] = None, public: bool = False,
                 exclusive: bool = False, timeout_s: Optional[float] = None,
                 validate: Optional[Validator] = None,
                 **more: Union[None, float, str]) -> None:
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
        min_interval_s, cron, cron_tz, then, rate_per_s and burst set the
        tm_job_def fields of the same names; None keeps the library's
        default.  ``then="next"`` makes every task of `name` that COMPLETES
        followed by a task of "next", whose ``context_task`` is the
        finished task's ``details["output"]`` (Job.output()); a cycle of
        ``then`` raises InvalidArgument.
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
        fields: Dict[str, Any] = dict(more, timeout_s=timeout_s)
        texts: List[bytes] = []  # alive until tm_register has copied them
        for field, value in fields.items():
            if value is None:
                continue
            kind = _MORE_FIELDS.get(field, "double")
            if kind == "text":
                texts.append(_text(value, field))
                setattr(d, field, texts[-1])
            elif kind == "double":
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

    def trigger(self, name: str, body: Optional[Document] = None,
                public: bool = False) -> Dict[str, str]:
        """Create a task (tm_trigger).  ``body`` is None or the REST body
        ``{"context_task": {...}, "refresh_token": "...", "create_reason":
        "..."}`` as a dict (or JSON text).  Returns ``{"task_id": ...}``."""
        result: Dict[str, str] = self._call(
            self._lib.tm_trigger, _text(name, "name"), _document(body, "body"),
            _TM_PUBLIC if public else 0)
        return result

    def trigger_many(self, name: str, bodies: Any,
                     public: bool = False) -> Dict[str, List[str]]:
        """Create tasks in bulk, all or none (tm_trigger_many).  ``bodies``
        is a list of trigger bodies as trigger() takes them (``{}`` for
        none), or its JSON text.  Returns ``{"task_ids": [...]}`` in order;
        a bad body raises WrongDataType naming its index."""
        result: Dict[str, List[str]] = self._call(
            self._lib.tm_trigger_many, _text(name, "name"),
            _document(bodies, "bodies"), _TM_PUBLIC if public else 0)
        return result

    def list_recent(self, name: str, page: int = 1, amt: int = 50,
                    public: bool = False) -> Dict[str, Any]:
        """Tasks of `name`, newest first (tm_list_recent): ``{"has_next":
        bool, "next_page": int, "tasks": [...]}``."""
        result: Dict[str, Any] = self._call(
            self._lib.tm_list_recent, _text(name, "name"),
            _int(page, "page", _INT_MIN, _INT_MAX), _int(amt, "amt", _INT_MIN, _INT_MAX),
            _TM_PUBLIC if public else 0)
        return result

    def iter_recent(self, name: str, amt: int = 64, public: bool = False) -> Iterator[Task]:
        """Every task of `name`, newest first: list_recent() page after page
        (``amt`` tasks a call) until ``has_next`` is false.

        The first page is read by this call, so a bad name or ``amt`` raises
        here; the others as the iteration reaches them.  A task triggered
        meanwhile pushes older ones onto later pages: a task already
        yielded is not yielded again.
        """
        first = self.list_recent(name, page=1, amt=amt, public=public)
        return self._pages(name, amt, public, first)

    def _pages(self, name: str, amt: int, public: bool,
               page: Dict[str, Any]) -> Iterator[Task]:
        seen: Set[str] = set()
        while True:
            for task in page["tasks"]:
                if task["task_id"] not in seen:
                    seen.add(task["task_id"])
                    yield task
            if not page["has_next"] or not page["tasks"] or page["next_page"] > _INT_MAX:
                return
            page = self.list_recent(name, page=page["next_page"], amt=amt, public=public)

    def get(self, name: str, task_id: str, public: bool = False) -> Task:
        """One task (tm_get), as a dict."""
        result: Task = self._call(self._lib.tm_get, _text(name, "name"),
                                  _text(task_id, "task_id"), _TM_PUBLIC if public else 0)
        return result

    def wait(self, name: str, task_id: str, timeout_s: Optional[float] = None,
             poll_s: float = 0.1, public: bool = False) -> Task:
        """Poll get() every ``poll_s`` seconds until the task is COMPLETED,
        FAILED or CANCELLED, and return it.  Raises TimeoutError (the
        builtin) when ``timeout_s`` seconds pass first; None waits for as
        long as it takes."""
        start = time.monotonic()
        while True:
            task = self.get(name, task_id, public=public)
            if task["status"] in FINAL_STATUSES:
                return task
            pause = poll_s
            if timeout_s is not None:
                left = start + timeout_s - time.monotonic()
                if left <= 0:
                    raise TimeoutError("task %s of %s is still %s after %g s"
                                       % (task_id, name, task["status"], timeout_s))
                pause = min(poll_s, left)
            time.sleep(pause)

    def patch(self, name: str, task_id: str, patch: Document) -> Task:
        """Update a task as an external worker would (tm_patch); ``patch``
        is a dict (or JSON text) with any of status, details, completed,
        failed.  Returns the updated task (private view)."""
        result: Task = self._call(self._lib.tm_patch, _text(name, "name"),
                                  _text(task_id, "task_id"), _document(patch, "patch"))
        return result

    def cancel(self, name: str, task_id: str) -> Task:
        """Cancel a task (tm_cancel); returns it after the call."""
        result: Task = self._call(self._lib.tm_cancel, _text(name, "name"),
                                  _text(task_id, "task_id"))
        return result

    def retry(self, name: str, task_id: str) -> Dict[str, str]:
        """Retry a FAILED or CANCELLED task by hand (tm_retry): a new task
        with its payload, ``create_reason`` "retry of <task_id>" and
        ``details["retry_of"]``, without its refresh token.  Returns
        ``{"task_id": ...}`` of the new task; a task that is not final, or
        is COMPLETED, raises LowerStatusNotAllowed."""
        result: Dict[str, str] = self._call(self._lib.tm_retry, _text(name, "name"),
                                            _text(task_id, "task_id"))
        return result

    def pause(self, name: str) -> None:
        """Stop every process's workers from starting tasks of `name`
        (tm_pause); triggers still store them.  Durable."""
        self._call(self._lib.tm_pause, _text(name, "name"), out=False)

    def resume(self, name: str) -> None:
        """Let the workers start tasks of a paused name again (tm_resume)."""
        self._call(self._lib.tm_resume, _text(name, "name"), out=False)

    # -- automatic triggers and figures ------------------------------------

    def notify(self, name: str, n: int) -> Dict[str, int]:
        """Add `n` changes to the durable change counter of `name`
        (tm_notify), then read what the library reports for the name: its
        entry of tm_stats after the call, ``stats()["names"][name]``, a dict
        ``{"REQUEST_SENT": n, ..., "COMPLETED": n, "total": n, "changes":
        n, "paused": bool}`` where ``changes`` is the counter since the
        name's last task."""
        n = _int(n, "n", 0, _UINT64_MAX)
        self._call(self._lib.tm_notify, _text(name, "name"), n, out=False)
        figures: Dict[str, int] = self.stats()["names"][name]
        return figures

    def stats(self) -> Dict[str, Any]:
        """Figures of the store (tm_stats), as a dict."""
        result: Dict[str, Any] = self._call(self._lib.tm_stats)
        return result

    def metrics(self) -> str:
        """The figures an operator scrapes, as Prometheus text (tm_metrics)."""
        result: str = self._call(self._lib.tm_metrics, text=True)
        return result

    def check(self) -> Dict[str, Any]:
        """Consistency check of the store's indexes (tm_check):
        ``{"ok": bool, "tasks": n, "problems": [...]}``."""
        result: Dict[str, Any] = self._call(self._lib.tm_check)
        return result
