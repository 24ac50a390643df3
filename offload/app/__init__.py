"""The application: the `Offload` object, its configuration, enqueue and admission, the rule book
and the claim gate every claimer sheds through, the outbox relay and the handle a producer gets."""
