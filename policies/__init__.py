"""The policy language: WHAT is wanted.

Parses and validates the YAML documents operators keep in git (units, models, loading,
JSON Schema). The vendors a Provider document may name are registered in `vendors.py` by
the adapters (`providers.registry`), so this package names none. It reads files and the
environment (for secret references) and nothing else; it imports no other energyctl
package.
"""
