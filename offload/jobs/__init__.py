"""How a job type is declared: its function or class, its options, signature binding and payload
checks."""
