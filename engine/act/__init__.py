"""Act: carry a plan out and follow its orders to the chain.

Applying an action (`applying.py`), tracking orders to delivery (`tracking.py`), the
provider pool (`providing.py`), market surveys and checks (`surveying.py`, `checking.py`,
`validating.py`) and resolving held orders (`resolving.py`). May use `decide`, `observe`,
`store` and `core`.
"""
