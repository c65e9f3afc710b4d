# examples/agent.py
import shoal as faust


# The model describes the data sent to our agent,
# and in our case we will use a JSON serialized dictionary
# with two integer fields: a, and b.
class Add(faust.Record):
    a: int
    b: int


# Next, we create the Faust application object that
# configures our environment.
app = faust.App('agent-example')

# The Kafka topic used by our agent is named 'adding',
# and we specify that the values in this topic are of the Add model.
# (you can also specify the key_type if your topic uses keys).
topic = app.topic('adding', value_type=Add)


@app.agent(topic)
async def adding(stream):
    async for value in stream:
        # here we receive Add objects, add a + b.
        yield value.a + value.b


# Not in the guide: lets ``python -m examples.agent worker -l info`` work too
# (the guide's way, ``clusterctl -A examples.agent worker -l info``, does not need it).
if __name__ == '__main__':
    app.main()
