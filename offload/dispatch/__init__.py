"""Dispatch policy as pure logic: the engines and the worker turn it into SQL and actions."""
