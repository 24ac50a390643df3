"""Misuses of the job API that a type checker refuses (checked by tests/unit/test_typing.py):
each line with an error ends with a comment: E, a colon, and part of mypy's message."""

from __future__ import annotations

from offload import Offload

app = Offload("sqlite:///sample.db")


@app.job
def send_welcome(user_id: int) -> str:
    return str(user_id)


@app.job(queue="emails")
async def fetch(url: str) -> bytes:
    return url.encode()


class Resize:
    def run(self, image_id: int) -> int:
        return image_id


resize = app.job(Resize)


send_welcome.enqueue("not-an-int")  # E: incompatible type "str"; expected "int"
send_welcome.enqueue(1, 2)  # E: Too many arguments
send_welcome.enqueue(user=1)  # E: Unexpected keyword argument "user"
send_welcome.options(queue="q").enqueue("x")  # E: incompatible type "str"; expected "int"
count: int = send_welcome.enqueue(1).result()  # E: Incompatible types in assignment
fetch.enqueue(42)  # E: incompatible type "int"; expected "str"
data: str = fetch.enqueue("u").result()  # E: Incompatible types in assignment
resize.enqueue("big")  # E: incompatible type "str"; expected "int"
send_welcome.prepare()  # E: Missing positional argument "user_id"
