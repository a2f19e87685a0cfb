"""The zombie policies beyond ``none``, one module each; importing this registers them all.

In: nothing. Out: entries in ``core.policy.REGISTRY``.
"""
