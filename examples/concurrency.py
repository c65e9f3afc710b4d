# examples/concurrency.py
# The guide's concurrency example, runnable: the guide fetches each article with aiohttp and
# calls an undefined ``store_article_in_db``. Here ``fetch_article`` and
# ``store_article_in_db`` are local stand-ins for that HTTP request and that database (an
# in-memory dict), so the example runs without a web server or a database; the agent keeps
# the guide's shape, with ``concurrency`` set.
#
# Run a worker:  python -m examples.concurrency worker -l info
# Post news:     clusterctl -A examples.concurrency send imports_news \
#                    '{"url": "https://example.com/a/1"}'
import asyncio

import shoal as faust


class Article(faust.Record):
    url: str


app = faust.App('concurrency-example')
news_topic = app.topic('news', value_type=Article)

#: The stand-in database: url -> stored page.
ARTICLES_DB: dict[str, str] = {}


async def fetch_article(url: str) -> str:
    """Stand-in for ``await aiohttp.ClientSession().get(url)``: waits like I/O would."""
    await asyncio.sleep(0.01)  # simulated network latency, not a wait for a condition
    return f'<html>article at {url}</html>'


async def store_article_in_db(response: str) -> None:
    """Stand-in for the guide's database write."""
    url = response.removeprefix('<html>article at ').removesuffix('</html>')
    ARTICLES_DB[url] = response


@app.agent(news_topic, concurrency=10)
async def imports_news(articles):
    async for article in articles:
        response = await fetch_article(article.url)
        await store_article_in_db(response)


if __name__ == '__main__':
    app.main()
