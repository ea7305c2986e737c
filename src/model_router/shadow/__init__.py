"""Shadow evaluation: measure every tier on the deployment's own traffic, off the caller's path.

``sampling`` picks the answered requests to shadow (in the Score Answer step, no call); the shadow workflow
(statemachine/shadow.asl.json) then runs ``budget`` (the daily cap), the invokers, ``judge`` and ``outcome``
(one record in the recorded-outcomes format) through the steps in ``steps``.
"""
