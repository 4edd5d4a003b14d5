"""A local API Gateway (REST API, Lambda proxy integration) for one function of a SAM template.

It runs any SAM-defined Python function and knows none of them: what a caller knows of its function's configuration
(which variables of its own environment override the template's) is passed in. It imports nothing from the command
line (`cachelab.cli`, `cachelab.commands`) nor from the proxy (tests/test_layers.py holds it to that).

Modules:
- `cachelab.gateway.settings`: `GatewaySettings`, the fixed limits, the JSON log, `GatewayError`.
- `cachelab.gateway.spec`: `FunctionSpec` and its routes, what the gateway knows of the function.
- `cachelab.gateway.template`: resolve one function of a template with SAM CLI's own providers (handler, runtime,
  timeout, memory, environment, REST routes, binary media types, stage); `read_template`, SAM CLI's reader.
- `cachelab.gateway.protocol`: `HttpConnection`, HTTP/1.1 parsed by httptools, requests answered in order.
- `cachelab.gateway.events`: HTTP request -> REST proxy event, the one builder (`cachelab invoke` uses it too).
- `cachelab.gateway.results`: Lambda result -> HTTP response, checked as API Gateway checks it.
- `cachelab.gateway.server`: `Gateway`, routing, invocations, timeouts, the admin endpoints (on uvloop).
- `cachelab.gateway.environments`: the pool of execution environments (one worker process each).
- `cachelab.gateway.wire`: the frames between the gateway and an environment.
- `cachelab.gateway.worker`: the Lambda-like runtime inside each environment (`python -m cachelab.gateway.worker`).
- `cachelab.gateway.cli`: `python -m cachelab.gateway` (and the arguments of `cachelab gateway`).

This package's `__init__` stays import-free: every execution environment imports `cachelab.gateway.worker`, and
its cold start must not pay for SAM CLI, httptools or uvloop.
"""
