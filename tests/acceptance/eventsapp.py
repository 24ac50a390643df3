"""A small events application for the `offload events` commands (`eventsapp:app`)."""

from offload import Batch, Event, Offload

app = Offload()
orders = app.topic("orders", partitions=2)


@app.subscribe(orders, name="send-receipt")
def send_receipt(event: Event) -> None:
    return None


@app.consumer(orders, group="analytics")
def analytics(events: Batch) -> None:
    return None
