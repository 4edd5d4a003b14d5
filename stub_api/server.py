"""The stub HTTP server (aiohttp): the app with its routes, and serving it until SIGTERM.

state.py     the mutable state: faults, the seeded random source, item versions, stats
answers.py   query parameters, JSON bodies, JSON / error / conditional answers
routes.py    the resources (/, /items, /items/{id}, /session, /image.png, /echo, /status/{code})
admin.py     the admin API (/__admin/...): the stub's contract, stub_api.client is its client
pipeline.py  the middleware: counting, the fault pipeline, the access log
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from stub_api import ADMIN_PREFIX, admin, routes
from stub_api.config import StubConfig
from stub_api.pipeline import access_log, stub_middleware
from stub_api.state import STATE, StubState


def create_app(config: StubConfig) -> web.Application:
    app = web.Application(middlewares=[stub_middleware], client_max_size=1024 * 1024)
    app[STATE] = StubState(config)
    app.router.add_get("/", routes.age_guess)
    app.router.add_get("/items", routes.item_list)
    app.router.add_get("/items/{id}", routes.item)
    app.router.add_get("/session", routes.session)
    app.router.add_get("/image.png", routes.image)
    app.router.add_get("/echo", routes.echo)
    app.router.add_get("/status/{code}", routes.status)
    app.router.add_get(ADMIN_PREFIX, admin.admin_redirect)
    app.router.add_get(f"{ADMIN_PREFIX}/", admin.admin_page)
    app.router.add_get(f"{ADMIN_PREFIX}/health", admin.admin_health)
    app.router.add_get(f"{ADMIN_PREFIX}/openapi.json", admin.admin_openapi)
    app.router.add_get(f"{ADMIN_PREFIX}/stats", admin.admin_stats)
    app.router.add_get(f"{ADMIN_PREFIX}/faults", admin.admin_get_faults)
    app.router.add_post(f"{ADMIN_PREFIX}/faults", admin.admin_post_faults)
    app.router.add_post(f"{ADMIN_PREFIX}/reset", admin.admin_reset)
    app.router.add_get(f"{ADMIN_PREFIX}/items/{{id}}", admin.admin_get_item)
    app.router.add_post(f"{ADMIN_PREFIX}/items/{{id}}", admin.admin_bump_item)
    return app


async def serve(config: StubConfig) -> None:
    """Listen until SIGTERM or SIGINT. Prints one line with the URL once the port is open."""
    app = create_app(config)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, backlog=1024)
        await site.start()
        port = config.port
        for address in runner.addresses:
            port = int(address[1])
        seed = app[STATE].faults.seed
        print(
            f"stub_api listening on http://{config.host}:{port} (seed {seed}; control page "
            f"http://{config.host}:{port}{ADMIN_PREFIX}/)",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        app[STATE].stopping.set()
    finally:
        await runner.cleanup()


def run(config: StubConfig) -> int:
    """Run the server in the foreground; returns the exit status. Raises OSError when it cannot listen."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(asctime)s %(name)s %(message)s")
    if config.access_log:
        access_log.setLevel(logging.INFO)
    asyncio.run(serve(config))
    return 0
