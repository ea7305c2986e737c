"""Rolling out router models: champion vs challenger on outcome records (compare), and the champion pointer
in SSM that ``model-router promote`` and ``rollback`` move (pointer). docs/rollout.md is the owner's recipe."""
