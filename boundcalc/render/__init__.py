"""Renderers: plain text / rich, LaTeX, Markdown, JSON. They format; they never compute."""
