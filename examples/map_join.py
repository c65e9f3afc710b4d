# examples/map_join.py
# "Streaming Map/Reduce" from the guide: map, kvmap, join and kvjoin on a ``pow2`` agent
# (the guide uses it without defining it; here it is, on a topic with a fixed name so that
# the worker and the client agree on it however each is started).
#
# Run a worker:   clusterctl -A examples.map_join worker -l info
# Run the calls:  python -m examples.map_join
import asyncio

import shoal as faust

app = faust.App('map-join-example')


@app.agent(app.topic('pow2', value_type=int))
async def pow2(stream):
    async for value in stream:
        yield value * value


async def main() -> None:
    agent = pow2

    # map: replies as they come in (unordered).
    async for reply in agent.map([1, 2, 3, 4, 5, 6, 7, 8]):
        print(f'RECEIVED REPLY: {reply!r}')

    # kvmap: the same, with the key of each pair as the Kafka message key.
    async for reply in agent.kvmap([('one', 1), ('two', 2), ('three', 3)]):
        print(f'RECEIVED KV REPLY: {reply!r}')

    # join: all the replies, in the order of the values.
    results = await pow2.join([1, 2, 3, 4, 5, 6, 7, 8])
    assert results == [1, 4, 9, 16, 25, 36, 49, 64]
    print(f'JOINED: {results!r}')

    # kvjoin: the same, with keys.
    results = await pow2.kvjoin([('one', 1), ('two', 2), ('three', 3)])
    assert results == [1, 4, 9]
    print(f'KV JOINED: {results!r}')


if __name__ == '__main__':
    loop = asyncio.get_event_loop()
    loop.run_until_complete(main())
