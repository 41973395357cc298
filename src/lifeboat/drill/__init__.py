"""``lifeboat drill``: break keys, signers, stores and state at once, recover every path, report RTO/RPO.

The drill is the top layer: it drives the pillars' library code (secrets, threshold, store,
snapshot, state, recovery) the way a user's recovery would, and never the CLI. ``timeline``
records what happened and how long it took; ``sandbox`` is the throw-away world a drill runs in;
each path module (``keys``, ``signers``, ``storage``, ``state``) sets its part up, breaks it and
brings it back; ``run`` puts them in order; ``report`` renders the result.
"""
