"""The run directory: config.json, weights, snapshots, checkpoints, the writer's lock."""
