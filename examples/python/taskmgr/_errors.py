"""The exceptions: one TaskmgrError subclass per tm_error of the library."""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Type


class TaskmgrError(Exception):
    """A failed libtaskmgr call.

    ``code`` is the tm_error value (negative), ``error_name`` the library's
    name for it (``"WRONG_DATA_TYPE"``), ``error_class`` the REST API's error
    class (``"WrongData"``) and ``message`` (also ``str(e)``) the library's
    message for the failure.
    """

    code: Optional[int] = None
    error_name: str = "UNKNOWN_ERROR"
    error_class: str = "ServerError"

    def __init__(self, message: str = "", error_name: Optional[str] = None,
                 error_class: Optional[str] = None, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if error_name is not None:
            self.error_name = error_name
        if error_class is not None:
            self.error_class = error_class

    def __str__(self) -> str:
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


_BY_CODE: Dict[Optional[int], Type[TaskmgrError]] = {cls.code: cls for cls in (
    WrongDataType, LowerStatusNotAllowed, TaskAlreadyRunning, TaskNotFound,
    TableNotFound, ResourceNotFound, StorageError, OutOfMemory, InvalidArgument)}

# What a validate hook may answer (include/taskmgr.h, tm_job_def.validate).
_VALIDATE_CODES: Tuple[Optional[int], ...] = (
    WrongDataType.code, TableNotFound.code, ResourceNotFound.code)
