"""One module per scenario of issue 5 (S1-S7); each has run(ctx, tools, opts) -> dict."""
