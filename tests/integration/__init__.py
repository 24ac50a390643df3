"""Integration tests: real `offload worker` processes on a real store, killed, paused and
signalled for real."""
