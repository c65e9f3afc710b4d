"""A Faust program with commands that ask its agent, as Faust's documentation shows them.

clusterctl -A tests.programs.greeter worker          # the agent
python tests/programs/greeter.py hello Ann --times 2  # a command: asks it, prints, exits
"""

import os

import shoal as faust
from shoal.cli import argument, option

app = faust.App(os.environ.get("GREETER_APP_ID", "greeter"), broker="kafka://localhost:9092")


@app.agent()
async def greet(names):
    async for name in names:
        yield f"hello {name}"


@app.command(
    argument("name"),
    option("--times", type=int, default=1, help="How many times to ask."),
)
async def hello(self, name: str, times: int) -> None:
    """Ask the greeter and print its answers."""
    for _ in range(times):
        self.say(await greet.ask(name, timeout=30))


@app.command()
async def broken():
    """A command that fails."""
    raise RuntimeError("it failed on purpose")


if __name__ == "__main__":
    app.main()
