"""Run a Lambda handler from a built artifact the way the Lambda Python runtime does, for the template tests.

    python3.13 -I -B lambda_runner.py TASK_ROOT HANDLER EVENTS_JSON OUT_JSON

`-I` keeps the interpreter isolated (no site-packages of the developer, no PYTHONPATH, not this folder), so the
handler can only import what `sam build` put into TASK_ROOT, as in Lambda. Like the runtime's bootstrap, this puts
TASK_ROOT first on sys.path, imports the handler's module once (the init phase), then calls the handler once per
event in the same process (one warm execution environment). Results, or the exception each call raised, go to
OUT_JSON. It is run as a script by the tests, never imported.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any


class Context:
    def __init__(self, function_name: str, timeout_s: float) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = function_name
        self.memory_limit_in_mb = 256
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(argv: list[str]) -> int:
    task_root, handler_name, events_path, out_path = argv[1:5]
    sys.path.insert(0, task_root)
    module_name, _, function_name = handler_name.rpartition(".")
    started = time.monotonic()
    module = importlib.import_module(module_name)
    init_ms = (time.monotonic() - started) * 1000
    handler = getattr(module, function_name)
    results: list[dict[str, Any]] = []
    for event in json.loads(Path(events_path).read_text()):
        try:
            results.append({"result": handler(event, Context(handler_name, 10.0))})
        except Exception as exc:  # what Lambda reports as a function error (and retries for async events)
            results.append({"error": type(exc).__name__, "message": str(exc)})
    report = {"init_ms": init_ms, "module_file": module.__file__, "python": sys.version, "results": results}
    Path(out_path).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
