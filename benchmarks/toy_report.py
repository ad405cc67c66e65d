"""One helper for the toy benchmarks' report: a titled Markdown section, printed and written to RESULTS.md."""

from __future__ import annotations


def publish(title: str, command: str, detail: str, body: str, section: str, write: bool = True) -> str:
    """Print "## title / Command: `command` (detail). / body" and, if `write`, put it in its section.

    section: the `<!-- section:start -->` marker name in benchmarks/RESULTS.md (`overhead.write_section`).
    Returns the text.
    """
    text = f"## {title}\n\nCommand: `{command.strip()}` ({detail}).\n\n{body}\n"
    print(text)
    if write:
        from overhead import write_section

        write_section(section, text)
    return text
