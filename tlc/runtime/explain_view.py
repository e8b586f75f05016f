"""Showing :meth:`Classifier.explain`'s answers: on a terminal (sentences on a coloured
background), as plain text, and as one self-contained HTML page.

Colour says what a sentence did to the predicted label: green where removing it lowers the
label's probability (it spoke for the label), red where removing it raises it (it spoke
against), stronger for a larger effect. Intensity is relative to the largest |score| in the
text, so a text decided by one sentence shows it, and the figure itself is printed beside
it. The text between and after the sentences (whitespace, sentences past the model's grid)
is shown as it is, uncoloured: what is shown is always the input, character for character.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from tlc.runtime.classifier import Explanation

GREEN, RED = (46, 160, 67), (218, 54, 51)


def _parts(e: Explanation):
    """(text, sentence or None) runs that make up ``e.text`` exactly, in order."""
    at = 0
    for s in e.sentences:
        if s.start < 0 or s.start < at:     # unplaced (or overlapping): shown in the list only
            continue
        if s.start > at:
            yield e.text[at:s.start], None
        yield e.text[s.start:s.end], s
        at = s.end
    if at < len(e.text):
        yield e.text[at:], None


def _strength(e: Explanation) -> float:
    return max((abs(s.score) for s in e.sentences), default=0.0) or 1.0


def _header(e: Explanation) -> str:
    probs = ", ".join(f"{k} {v:.3f}" for k, v in e.probabilities.items())
    tail = (f"; {e.unscored} sentence{'s' if e.unscored != 1 else ''} past the model's grid "
            "not scored" if e.unscored else "")
    n = len(e.sentences)
    return f"label {e.label} ({probs}); {n} sentence{'s' if n != 1 else ''} scored{tail}"


def terminal(e: Explanation, colour: bool) -> str:
    """The text with each sentence on a background coloured by its score (``colour``), then
    the sentences ranked, with their scores."""
    lines = [_header(e)]
    if colour:
        top = _strength(e)
        body = []
        for text, s in _parts(e):
            if s is None:
                body.append(text)
                continue
            r, g, b = GREEN if s.score >= 0 else RED
            a = min(1.0, abs(s.score) / top)
            # blend towards the colour on a dark-neutral base, readable in light and dark themes
            mix = [int(80 + (c - 80) * a) for c in (r, g, b)]
            body.append(f"\x1b[48;2;{mix[0]};{mix[1]};{mix[2]}m\x1b[97m{text}\x1b[0m")
        lines.append("".join(body))
    else:
        lines.append(e.text)
    lines.append("sentences, most decisive first (score: how much the label's probability "
                 "drops without it):")
    for s in sorted(e.sentences, key=lambda s: -s.score):
        shown = " ".join(s.text.split()) if s.text is not None else "(could not be placed)"
        lines.append(f"  {s.score:+.4f}  {shown}")
    return "\n".join(lines)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 16px/1.6 system-ui, sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em;
       color: #1f2328; }}
.text {{ white-space: pre-wrap; border: 1px solid #d0d7de; border-radius: 6px; padding: 1em;
        margin: 0.5em 0 2em; }}
.sentence {{ border-radius: 3px; }}
.meta {{ color: #57606a; font-size: 14px; }}
.legend span {{ display: inline-block; padding: 0 0.5em; margin-right: 0.5em;
               border-radius: 3px; }}
</style></head>
<body>
<h1>{title}</h1>
<p class="legend"><span style="background: rgba(46,160,67,0.7)">for the label</span><span
style="background: rgba(218,54,51,0.7)">against it</span>colour strength: how much the label's
probability changes when the sentence is removed (relative to the text's strongest sentence;
hover a sentence for its score)</p>
{body}
</body></html>
"""


def html_page(explanations: Sequence[Explanation], title: str = "tlc explain") -> str:
    """One HTML page, no external assets: each text with its sentences highlighted."""
    blocks = []
    for n, e in enumerate(explanations, 1):
        top = _strength(e)
        runs = []
        for text, s in _parts(e):
            if s is None:
                runs.append(html.escape(text, quote=False))
                continue
            r, g, b = GREEN if s.score >= 0 else RED
            a = 0.08 + 0.72 * min(1.0, abs(s.score) / top)
            runs.append(f'<span class="sentence" style="background: rgba({r},{g},{b},{a:.2f})" '
                        f'title="score {s.score:+.4f}" data-score="{s.score:+.4f}">'
                        f"{html.escape(text, quote=False)}</span>")
        blocks.append(f'<h2>Text {n}</h2>\n<p class="meta">{html.escape(_header(e))}</p>\n'
                      f'<div class="text">{"".join(runs)}</div>')
    return PAGE.format(title=html.escape(title), body="\n".join(blocks))
