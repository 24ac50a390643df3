"""Typed uses of the job API that a type checker accepts (checked by tests/unit/test_typing.py)."""

from __future__ import annotations

from collections.abc import Iterator

from offload import Job, JobType, Offload

app = Offload("sqlite:///sample.db")


@app.job
def send_welcome(user_id: int, greeting: str = "Hello") -> str:
    return f"{greeting}, {user_id}"


@app.job(queue="emails", max_attempts=3)
def count_words(text: str) -> int:
    return len(text.split())


@app.job
async def fetch(url: str, *, timeout: float = 10.0) -> bytes:
    return url.encode()


@app.job(checkpoint_every=10)
def reindex(batch: int, cursor: int | None = None) -> Iterator[int]:
    yield from range(cursor or 0, 10)


class Resize:
    def run(self, image_id: int, width: int) -> dict[str, int]:
        return {"image": image_id, "width": width}


# A class decorator does not change what a type checker sees: declare a job class by a call.
resize = app.job(name="resize")(Resize)


welcome: Job[str] = send_welcome.enqueue(1)
text: str = welcome.result(timeout=5)
text = send_welcome.enqueue(2, greeting="Hi").result()
text = send_welcome.options(queue="priority", delay=5).enqueue(3).result()
words: int = count_words.enqueue("a b c").result()
body: bytes = fetch.enqueue("https://example.com", timeout=2.5).result()
reindex.enqueue(100)
size: dict[str, int] = resize.enqueue(7, width=640).result()
prepared = send_welcome.prepare(4)
app.enqueue_many([prepared, count_words.prepare("x")])
by_name: JobType = app.job_type("send_welcome")
anything = by_name.enqueue("any", "arguments").result()


async def produce() -> str:
    job = await send_welcome.enqueue_async(5)
    return await job.result_async()
