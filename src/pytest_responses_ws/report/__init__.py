"""Reports of the measured turns: summaries, terminal table, JSON, Markdown, HTML."""
