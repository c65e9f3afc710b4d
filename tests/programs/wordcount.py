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


# -- web views, as the Faust documentation writes them -------------------------------------


@app.page("/count/{word}/")
@app.table_route(table=word_counts, match_info="word")
async def get_count(web, request, word):
    """A word's count, answered by the worker that owns the word."""
    return web.json({"word": word, "count": word_counts[word], "pid": os.getpid()})


@app.page("/words/")
class Words(faust.web.View):
    """POST {"word": ...} to count a word; GET says which process answered."""

    async def get(self, request):
        return self.json({"pid": os.getpid()})

    async def post(self, request):
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("word"), str):
            raise self.ValidationError('expected {"word": "..."}')
        await words.send(value=body["word"])
        return self.json({"sent": body["word"]}, status=201)


@app.page("/lookup/")
class Lookup(faust.web.View):
    @app.table_route(table=word_counts, query_param="word")
    async def get(self, request):
        word = request.query["word"]
        return self.json({"word": word, "count": word_counts[word], "pid": os.getpid()})


@app.page("/broken/")
async def broken(web, request):
    raise RuntimeError("this page is broken on purpose")
