"""A Faust program of timers, a crontab, a service feeding a channel, and rebalance signals.

Written as the Faust documentation shows these features; only the import line is shoal's.
It prints a line for each thing that happens: ``WHAT HOST PID UNIXTIME [DETAIL]`` (HOST comes
from $SCHEDULER_HOST, so a test running two supervisors can tell their lines apart).

    SCHEDULER_APP_ID=demo clusterctl -A tests.programs.scheduler up --workers 2
"""

import os
import sys
import time
import zoneinfo

import shoal as faust

app = faust.App(
    os.environ.get("SCHEDULER_APP_ID", "scheduler"),
    broker="kafka://localhost:9092",  # a deployment points it elsewhere: BROKER_URL=...
    topic_partitions=4,
    # Faust settings that match what shoal does pass quietly; those that do nothing here are
    # accepted and named once, in a warning.
    store="memory://",
    web_enabled=False,
    worker_redirect_stdouts=False,
    reply_to_prefix="scheduler-replies-",
)

HOST = os.environ.get("SCHEDULER_HOST", "-")
CRON = os.environ.get("SCHEDULER_CRON", "0 0 1 1 *")
CRON_ZONE = zoneinfo.ZoneInfo(os.environ.get("SCHEDULER_TZ", "UTC"))

numbers = app.channel(value_type=int)


def say(what, *detail):
    # One write per line: the workers share the supervisor's stdout, and print() writes its
    # pieces one by one, so two processes' lines could interleave.
    words = [what, HOST, os.getpid(), f"{time.time():.3f}", *detail]
    sys.stdout.write(" ".join(map(str, words)) + "\n")
    sys.stdout.flush()


@app.timer(interval=0.5)
async def tick():
    say("tick")


@app.timer(interval=0.25, on_leader=True)
async def lead(app):
    say("leader", app.is_leader())


@app.crontab(CRON, timezone=CRON_ZONE, on_leader=True)
async def nightly():
    say("cron", CRON_ZONE.key)


@app.agent(numbers)
async def doubler(stream):
    async for number in stream:
        say("doubled", number * 2)


@app.service
class Feeder(faust.Service):
    async def on_start(self):
        self.sent = 0
        say("service-start")

    async def on_stop(self):
        say("service-stop", self.sent)

    @faust.Service.timer(0.5)
    async def feed(self):
        self.sent += 1
        await numbers.send(value=self.sent)


@app.on_rebalance_complete.connect
async def rebalanced(app, **kwargs):
    say("rebalanced", app.is_leader())


if __name__ == "__main__":
    app.main()
