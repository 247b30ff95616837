"""The instrument of ``python -m bench live``: what a deployment's task tries do after their state.

Put this folder first on ``PYTHONPATH`` of every process of a deployment and set
``ORDO_HOOKS_BENCH_TIMINGS`` to a file: each process then appends JSON lines to it (one ``write``
each, so processes do not interleave). Without the variable this module does nothing at all.

It wraps functions as their modules are imported (a finder first on ``sys.meta_path``), only
those that exist, and never lets its own failure reach the process:

- Airflow's supervisor (``ActivitySubprocess``): ``state_received`` when a try's final state
  arrives (``SucceedTask``, ``TaskState``, ``RetryTask``), ``exit_seen`` when it first sees the
  task process's exit code; both name the task process as ``child``.
- Airflow's task runner: ``try`` (its dag, task, run and try number) when ``run()`` starts,
  ``state_sent`` as ``CommsDecoder.send`` sends the final state, and ``finalize`` (start, end).
- After its state is sent, and only then, a task process also records what its callbacks do:
  every outermost ``import`` (module, start, end), every ``http`` request made with ``requests``
  (method, path, start, end) and every ``call`` of the provider's functions in :data:`CALLS`, by
  qualified name: these are the benchmark's breakdown; a function that has moved or gone is simply
  not seen.

Times are ``time.time()``, comparable between processes of one machine. A sitecustomize found
first shadows any other on the path (Debian's only installs apport's crash hook).
"""

from __future__ import annotations

import os

OUT = os.environ.get("ORDO_HOOKS_BENCH_TIMINGS")

STATES = frozenset({"SucceedTask", "TaskState", "RetryTask"})
"""The messages by which a task process reports its try's final state to the supervisor."""

CALLS = {
    "airflow_ordo_hooks.callbacks.task_log": ["_catch_up"],
    "airflow_ordo_hooks.callbacks.job_event": ["event_payload"],
    "airflow_ordo_hooks.hooks.webhook": ["deliver_all"],
    "airflow_ordo_hooks.hooks._http_hooks": ["AirflowApiHook.__init__"],  # where it was
    "airflow_ordo_hooks.hooks.airflow_api": ["AirflowApiHook.__init__"],  # where it is going
}
"""The provider's functions timed after the state, by module: ``name`` or ``Class.method``."""

if OUT:
    import functools
    import importlib.machinery
    import json
    import sys
    import threading
    import time

    _after_state = False
    """Whether this process has sent its try's final state: only then are steps recorded."""
    _local = threading.local()  # .depth: how many imports this thread is executing

    def _emit(event: str, **fields: object) -> None:
        try:
            line = json.dumps({"ev": event, "pid": os.getpid(), **fields}, default=str) + "\n"
            fd = os.open(OUT, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except Exception:
            pass

    def _mark(wrapper, wrapped):
        wrapper = functools.wraps(wrapped)(wrapper)
        wrapper.__ordo_bench_live__ = True
        return wrapper

    def _replace(owner: object, name: str, make) -> None:
        """``owner.name = make(owner.name)``, if it is a function not wrapped yet; else nothing."""
        original = getattr(owner, name, None)
        if callable(original) and not getattr(original, "__ordo_bench_live__", False):
            if isinstance(owner, type) and isinstance(owner.__dict__.get(name), (staticmethod, classmethod)):
                return
            setattr(owner, name, _mark(make(original), original))

    def _timed_call(qualname: str):
        def make(original):
            def wrapper(*args, **kwargs):
                if not _after_state:
                    return original(*args, **kwargs)
                start = time.time()
                try:
                    return original(*args, **kwargs)
                finally:
                    _emit("call", fn=qualname, start=start, end=time.time())
            return wrapper
        return make

    # -- Airflow's supervisor ------------------------------------------------------------------
    def _patch_supervisor(module) -> None:
        cls = module.ActivitySubprocess

        def handle(original):
            def _handle_request(self, msg, *args, **kwargs):
                if type(msg).__name__ in STATES:
                    _emit("state_received", child=getattr(self, "pid", None), msg=type(msg).__name__, t=time.time())
                return original(self, msg, *args, **kwargs)
            return _handle_request

        def check(original):
            def _check_subprocess_exit(self, *args, **kwargs):
                before = getattr(self, "_exit_code", None)
                code = original(self, *args, **kwargs)
                if before is None and code is not None:
                    _emit("exit_seen", child=getattr(self, "pid", None), code=code, t=time.time())
                return code
            return _check_subprocess_exit

        _replace(cls, "_handle_request", handle)
        _replace(cls, "_check_subprocess_exit", check)

    # -- Airflow's task runner -----------------------------------------------------------------
    def _patch_task_runner(module) -> None:
        def run(original):
            def wrapper(ti, *args, **kwargs):
                _emit("try", t=time.time(), **{k: getattr(ti, k, None) for k in ("dag_id", "task_id", "run_id", "try_number", "map_index")})
                return original(ti, *args, **kwargs)
            return wrapper

        def finalize(original):
            def wrapper(*args, **kwargs):
                start = time.time()
                try:
                    return original(*args, **kwargs)
                finally:
                    _emit("finalize", start=start, end=time.time())
            return wrapper

        _replace(module, "run", run)
        _replace(module, "finalize", finalize)

    def _patch_comms(module) -> None:
        def send(original):
            def wrapper(self, *args, **kwargs):
                global _after_state
                msg = kwargs.get("msg", args[0] if args else None)
                if type(msg).__name__ in STATES:
                    _emit("state_sent", msg=type(msg).__name__, t=time.time())
                    _after_state = True
                return original(self, *args, **kwargs)
            return wrapper

        _replace(module.CommsDecoder, "send", send)

    # -- HTTP, whoever sends it ----------------------------------------------------------------
    def _patch_requests(module) -> None:
        from urllib.parse import urlsplit

        def request(original):
            def wrapper(self, method, url, *args, **kwargs):
                if not _after_state:
                    return original(self, method, url, *args, **kwargs)
                start = time.time()
                try:
                    return original(self, method, url, *args, **kwargs)
                finally:
                    _emit("http", method=str(method).upper(), path=urlsplit(str(url)).path, start=start, end=time.time())
            return wrapper

        _replace(module.Session, "request", request)

    def _patch_calls(names):
        def patch(module) -> None:
            for name in names:
                owner_name, _, attr = name.rpartition(".")
                owner = getattr(module, owner_name, None) if owner_name else module
                if owner is not None:
                    _replace(owner, attr, _timed_call(name))
        return patch

    PATCHES = {
        "airflow.sdk.execution_time.supervisor": _patch_supervisor,
        "airflow.sdk.execution_time.task_runner": _patch_task_runner,
        "airflow.sdk.execution_time.comms": _patch_comms,
        "requests.sessions": _patch_requests,
        **{module: _patch_calls(names) for module, names in CALLS.items()},
    }

    _PER_MODULE_LOADERS = (
        importlib.machinery.SourceFileLoader, importlib.machinery.SourcelessFileLoader,
        importlib.machinery.ExtensionFileLoader,
    )
    """Loaders made for one module each: wrapping one's ``exec_module`` touches no other module."""

    class _Finder:
        """First on ``sys.meta_path``: finds nothing itself, but wraps the loading of a module to patch or time."""

        def find_spec(self, name, path, target=None):
            patch = PATCHES.get(name)
            timed = _after_state and not getattr(_local, "depth", 0)
            if patch is None and not timed:
                return None  # the usual finders take it from here
            try:
                spec = self._others(name, path, target)
                if spec is not None and isinstance(spec.loader, _PER_MODULE_LOADERS):
                    self._wrap(spec.loader, name, patch, time.time() if timed else None)
                return spec
            except Exception:
                return None

        def _others(self, name, path, target):
            for finder in sys.meta_path:
                if finder is not self and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(name, path, target)
                    if spec is not None:
                        return spec
            return None

        @staticmethod
        def _wrap(loader, name, patch, started):
            original = loader.exec_module

            def exec_module(module):
                loader.__dict__.pop("exec_module", None)  # the loader is the module's: leave it as it was
                _local.depth = getattr(_local, "depth", 0) + 1
                try:
                    original(module)
                finally:
                    _local.depth -= 1
                if started is not None:
                    _emit("import", module=name, start=started, end=time.time())
                if patch is not None:
                    try:
                        patch(module)
                    except Exception as exc:
                        _emit("patch_failed", module=name, error=repr(exc))

            loader.exec_module = exec_module

    def _forked() -> None:
        global _after_state
        _after_state = False

    sys.meta_path.insert(0, _Finder())
    os.register_at_fork(after_in_child=_forked)
    for _name, _patch in PATCHES.items():  # imported before this module: not expected, but patch them too
        if _name in sys.modules:
            try:
                _patch(sys.modules[_name])
            except Exception:
                pass
