"""The policy language: WHAT is wanted.

Parses and validates the YAML documents operators keep in git (units, models, loading,
JSON Schema). This package reads files and the environment (for secret references) and
nothing else; it imports no other energyctl package.
"""
