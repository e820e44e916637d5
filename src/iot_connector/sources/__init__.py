"""Protocol sources: one sub-package per protocol (config model, source class, sample config, tests)."""
