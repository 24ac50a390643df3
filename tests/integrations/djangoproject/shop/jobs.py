from offload.integrations.django import get_app

app = get_app()


@app.job()
def send_receipt(order_id: int) -> int:
    return order_id
