# examples/cast_ask_send.py
# "Cast or Ask?" from the guide. The guide shows only the calls; the agents they talk to
# (``adder``, ``another_agent``) are defined here, on topics with fixed names so that the
# worker and the client agree on them however each is started.
#
# Run a worker:   clusterctl -A examples.cast_ask_send worker -l info
# Run the calls:  python -m examples.cast_ask_send
import asyncio

import shoal as faust


class Add(faust.Record):
    a: int
    b: int


app = faust.App('cast-ask-send-example')


@app.agent(app.topic('adder', value_type=Add))
async def adder(stream):
    async for value in stream:
        yield value.a + value.b


@app.agent(app.topic('another_agent', value_type=int))
async def another_agent(stream):
    async for value in stream:
        print(f'ANOTHER AGENT RECEIVED: {value!r}')


async def main() -> None:
    # cast: the agent receives this value, but it will not send a reply.
    await adder.cast(Add(a=2, b=2))

    # ask: the reply comes back to this process.
    value = await adder.ask(Add(a=2, b=2))
    assert value == 4
    print(f'ASKED: {value!r}')

    # send: the reply goes to another agent (it prints it in the worker).
    await adder.send(value=Add(a=2, b=2), reply_to=another_agent)


if __name__ == '__main__':
    loop = asyncio.get_event_loop()
    loop.run_until_complete(main())
