"""Hierarchy reconstruction: a geometry-agnostic region model for is-a hierarchies (work in progress)."""
