"""A Faust word count: words are grouped by word and counted in a table, and every count is
also written to a topic (so a test can see what was processed, repeats included).

Written as the Faust documentation shows it; only the import line is shoal's.

    WORDCOUNT_APP_ID=demo clusterctl -A tests.programs.wordcount up --workers 2
"""

import os

import shoal as faust

app = faust.App(
    os.environ.get("WORDCOUNT_APP_ID", "wordcount"),
    broker="kafka://localhost:9092",  # a deployment points it elsewhere: BROKER_URL=...
    topic_partitions=4,
    store="rocksdb://",
)

words = app.topic(f"{app.conf.id}-words", value_type=str)
counted = app.topic(f"{app.conf.id}-counted", value_type=str)
word_counts = app.Table("word_counts", default=int)


@app.agent(words)
async def count_words(stream):
    async for word in stream.group_by(lambda w: w, name="word"):
        word_counts[word] += 1
        await counted.send(value=f"{word} {word_counts[word]}")


@app.command()
async def show():
    """Print the counts this process holds (none: it owns no partitions)."""
    print(word_counts.as_ansitable(title="Word counts"))
