# examples/noagents.py
# Run from the repository root: python -m examples.noagents
# then send values to the 'noagents' topic, e.g.:
#   clusterctl -A examples.noagents send noagents '"hello"'
import asyncio

import shoal as faust  # the guide leaves out this import

app = faust.App('noagents')
topic = app.topic('noagents')


async def mystream():
    async for event in topic.stream():
        print(f'Received: {event!r}')


async def start_streams():
    await app.start()
    await mystream()


if __name__ == '__main__':
    loop = asyncio.get_event_loop()
    loop.run_until_complete(start_streams())
