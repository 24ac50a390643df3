"""The application: the `Offload` object, its configuration, enqueue and admission, the rule book,
the outbox and the handle a producer gets back."""
