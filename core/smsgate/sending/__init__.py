"""Sending: ``gateway`` (the embedding API: provider and config resolved, then one call into the
send flow), ``flow`` (the stages of a send, in order), ``pipeline`` (the stages themselves:
normalise, check, plan, execute, merge) and ``transport`` (the one shared urllib3 pool).
The ledger, limits and routing join here as stages of the flow."""
