"""One module per command; each exposes `run(ctx, ...) -> ExitCode` that tests call directly."""
