# examples/send_to_agent.py
# Run from the repository root, while a worker of examples.agent runs:
#   python -m examples.send_to_agent
import asyncio

from .agent import Add, adding


async def send_value() -> None:
    print(await adding.ask(Add(a=4, b=4)))


if __name__ == '__main__':
    loop = asyncio.get_event_loop()
    loop.run_until_complete(send_value())
