"""The agent: an LLM planner and critic (litellm) that builds workflow graphs, and an offline planner.

Imports ``graphs`` and the catalog description only; never the scheduler or Ray.
"""
