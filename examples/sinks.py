# examples/sinks.py
# The four kinds of sink of the guide, in one app. The guide names every snippet's sink
# ``mysink`` and every agent ``myagent`` and leaves the agents' bodies out (``...``); here
# each has its own name, and each agent yields what it receives so its sinks have values.
#
# Run a worker:  clusterctl -A examples.sinks worker -l info
# Send values:   clusterctl -A examples.sinks send myagent 1
#                clusterctl -A examples.sinks send agent_a '"hello"'
# The agents without a topic read ``sinks-example-examples.sinks.<agent>``, as Faust names them.
import asyncio

import shoal as faust

app = faust.App('sinks-example')


# Function Callback


def mysink(value):
    print(f'AGENT YIELD: {value!r}')


@app.agent(sink=[mysink])
async def myagent(stream):
    async for value in stream:
        yield value


# Async Function Callback


async def my_async_sink(value):
    print(f'AGENT YIELD: {value!r}')
    # This will force the agent instance that yielded this value
    # to sleep for 1.0 second before continuing on the next event
    # in the stream.
    await asyncio.sleep(1)


@app.agent(sink=[my_async_sink])
async def my_async_agent(stream):
    async for value in stream:
        yield value


# Topic

agent_log_topic = app.topic('agent_log')


@app.agent(sink=[agent_log_topic])
async def my_logged_agent(stream):
    async for value in stream:
        yield value


# Another Agent


@app.agent()
async def agent_b(stream):
    async for event in stream:
        print(f'AGENT B RECEIVED: {event!r}')


@app.agent(sink=[agent_b])
async def agent_a(stream):
    async for event in stream:
        print(f'AGENT A RECEIVED: {event!r}')
        yield event  # not in the guide: what agent_a yields is what agent_b receives
