"""Run one app in this process until a signal or a crash: the ``clusterctl worker`` command.

Signal handlers only flag the stop; the loop does the work: stop fetching, commit what is done,
stop agents, flush the producer. A second SIGINT/SIGTERM exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from shoal.app import App
from shoal.exitcodes import ExitCode
from shoal.kafka import admin

log = logging.getLogger(__name__)


def install_event_loop_policy() -> str:
    """Use uvloop where it is installed (faster I/O and callbacks); returns which loop."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


async def serve(app: App) -> int:
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(ExitCode.FAILED)
        log.info("%s: stopping gracefully", signal.Signals(signum).name)
        app.request_stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await admin.wait_for_broker(
            app.conf.bootstrap_servers, app.conf.broker_connect_timeout, what="the worker"
        )
        await app.start()
        await app.wait_stopped()
    finally:
        await app.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    if app.crashed is not None:
        log.error("worker stopped because of: %r", app.crashed)
        return ExitCode.FAILED
    log.info("worker stopped")
    return ExitCode.OK


def run_worker(app: App) -> int:
    """Run ``app`` as a worker in this process; returns the exit code."""
    kind = install_event_loop_policy()
    log.info("starting worker for app %s on %s (pid %d)", app.id, kind, os.getpid())
    try:
        return asyncio.run(serve(app))
    except KeyboardInterrupt:
        return ExitCode.FAILED
    finally:
        sys.stdout.flush()
