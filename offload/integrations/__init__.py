"""Integrations with the frameworks and tools offload's users already run: OpenTelemetry and
Sentry (built on the app's hooks), Django, FastAPI/Starlette and Flask.

Each integration is a module of its own that imports its tool's package; this package imports
nothing, so `import offload` never loads one.
"""
