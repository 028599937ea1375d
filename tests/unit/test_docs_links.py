"""The README and docs/ stay navigable: every relative link resolves to a file of the repository, every `#anchor`
to a heading of the file it names, the README stays short and links every docs page.

Anchors follow GitHub's rule for headings in markdown files (GitHub Docs, "Basic writing and formatting syntax",
"Section links"): the heading text lowercased, spaces turned into `-`, every other punctuation but `-` and `_`
removed; a repeated heading gets `-1`, `-2`, ... appended. Markdown link syntax is CommonMark's inline link
`[text](destination)` (CommonMark spec, "Links"); code spans and fenced code blocks hold no links.
"""
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 250

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with code spans blanked out."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(CODE_SPAN.sub("", line))
    return lines


def github_anchor(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading anchors by its text
    text = re.sub(r"(?<!\w)_(\S(?:.*?\S)?)_(?!\w)", r"\1", text)  # _emphasis_ is formatting; snake_case is text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def heading_anchors(text: str) -> set[str]:
    found, seen, fenced = set(), {}, False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            slug = github_anchor(match.group(2))
            count = seen.get(slug, 0)
            found.add(slug if count == 0 else f"{slug}-{count}")
            seen[slug] = count + 1
    return found


def relative_links(path: Path) -> list[str]:
    links = []
    for line in prose_lines(path.read_text()):
        for destination in INLINE_LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", destination, re.IGNORECASE):  # http:, https:, mailto: ...
                continue
            links.append(destination)
    return links


PAGES = [README, *DOCS]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_heading(page):
    broken = []
    for link in relative_links(page):
        target, _, anchor = link.partition("#")
        file = (page.parent / unquote(target)).resolve() if target else page
        if not file.is_relative_to(ROOT) or not file.exists():
            broken.append(f"{link}: no file {file}")
        elif anchor and (file.suffix != ".md" or unquote(anchor).lower() not in heading_anchors(file.read_text())):
            broken.append(f"{link}: no heading with anchor #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_readme_is_read_in_five_minutes():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the reference belongs in docs/"


def test_the_readme_links_every_docs_page():
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in relative_links(README)}
    unlinked = [str(page.relative_to(ROOT)) for page in DOCS if page.resolve() not in linked]
    assert not unlinked, f"docs pages the README does not link: {unlinked}"


def test_the_anchor_rule_follows_githubs_documented_example():
    """GitHub Docs, "Basic writing and formatting syntax", "Section links": the example headings and the links to them."""
    example = "\n".join([
        "# Example headings", "", "## Sample Section", "",
        "## This'll be a _Helpful_ Section About the Greek Letter \u0398!", "",
        "## This heading is not unique in the file", "", "TEXT 1", "",
        "## This heading is not unique in the file", "", "TEXT 2", "",
        "```markdown", "## Not a heading: inside a code block", "```"])
    documented_links = ["sample-section", "thisll-be-a-helpful-section-about-the-greek-letter-\u0398",
                        "this-heading-is-not-unique-in-the-file", "this-heading-is-not-unique-in-the-file-1"]
    found = heading_anchors(example)
    assert all(link.lower() in found for link in documented_links), found
    assert github_anchor("batch_runnable_monitor (EventBridge Scheduler, every 5 minutes)") == \
        "batch_runnable_monitor-eventbridge-scheduler-every-5-minutes"
    assert "not-a-heading-inside-a-code-block" not in found
