"""The training engine over HF Accelerate: config, loop, resume, log, stopping, augment."""
