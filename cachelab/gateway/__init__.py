"""A local API Gateway (REST API, Lambda proxy integration) for the proxy Lambda, driven by the SAM template.

Modules:
- `cachelab.gateway.template`: resolve one function of `sam/template.yaml` with SAM CLI's own providers
  (handler, runtime, timeout, memory, environment, REST routes, binary media types, stage).
- `cachelab.gateway.server`: `Gateway`, the asyncio HTTP front that turns requests into REST proxy events.
- `cachelab.gateway.environments`: the pool of execution environments (one worker process each).
- `cachelab.gateway.worker`: the Lambda-like runtime inside each environment (`python -m cachelab.gateway.worker`).
- `cachelab.gateway.cli`: `cachelab gateway` / `python -m cachelab.gateway`.

This package's `__init__` stays import-free: every execution environment imports `cachelab.gateway.worker`, and
its cold start must not pay for SAM CLI.
"""
