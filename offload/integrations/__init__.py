"""Integrations with the frameworks and tools offload's users already run.

Each integration is a module of its own that imports its framework; this package imports
nothing, so `import offload` never loads a framework.
"""
