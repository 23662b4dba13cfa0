"""taskmgr: the Python binding of libtaskmgr, over ctypes (no compile step).

    import taskmgr

    def retrain(job):
        for step in range(10):
            if job.cancelled():
                return "CANCELLED"
            job.progress({"step": step})
            job.message("step %d of 10" % step)
        return "COMPLETED"

    with taskmgr.Manager("./var/quickstart") as m:
        m.register("ml_model_retrain", run=retrain, public=True, exclusive=True)
        task_id = m.trigger("ml_model_retrain")["task_id"]
        print(m.wait("ml_model_retrain", task_id)["status"])

The library is looked up in this order: the ``library`` argument of
Manager, the environment variable TASKMGR_LIBRARY, then the system's search
path (``libtaskmgr.so.0``, then ctypes.util.find_library).  Every call that
fails raises a TaskmgrError subclass named after the library's error name,
with ``.error_name``, ``.error_class`` and the library's message.  See
doc/python.md for the whole interface.
"""

from ._errors import (InvalidArgument, LowerStatusNotAllowed, OutOfMemory,
                      ResourceNotFound, StorageError, TableNotFound,
                      TaskAlreadyRunning, TaskmgrError, TaskNotFound,
                      WrongDataType)
from ._manager import FINAL_STATUSES, Job, Manager

__all__ = [
    "Manager", "Job", "FINAL_STATUSES",
    "TaskmgrError", "WrongDataType", "LowerStatusNotAllowed",
    "TaskAlreadyRunning", "TaskNotFound", "TableNotFound", "ResourceNotFound",
    "StorageError", "OutOfMemory", "InvalidArgument",
]

__version__ = "0.1.0"

# The public classes are taskmgr.X wherever they are defined: in reprs,
# tracebacks and pickles.
for _cls in (Manager, Job, TaskmgrError, WrongDataType, LowerStatusNotAllowed,
             TaskAlreadyRunning, TaskNotFound, TableNotFound, ResourceNotFound,
             StorageError, OutOfMemory, InvalidArgument):
    _cls.__module__ = __name__
del _cls
