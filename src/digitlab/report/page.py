"""The shell every report page shares: one stylesheet, the document wrapper and the PNG embedder.

A page is one self-contained file: every image is embedded as a base64 PNG data URI, so the
page can be mailed or archived alone. Callers pass HTML they have already escaped; the title and
heading given here are escaped here.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 1.5em auto;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.95em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; }
.note { color: #8a4b00; background: #fff6e5; padding: 0.4em 0.6em; }
.alarm { border-left: 4px solid #d98c00; padding: 0.2em 0.8em; margin: 0.6em 0;
         background: #fffaf0; }
.caption { color: #555; margin: 0.3em 0; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
.side { display: flex; gap: 1.5em; align-items: flex-start; flex-wrap: wrap; }
.side > div:last-child { flex: 1 1 500px; }
.narrow { max-width: 700px; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
nav a { margin-right: 0.8em; }
.v-best { color: #1a7f37; font-weight: bold; }
.v-within { color: #0969da; }
.v-worse { color: #8c959f; }
.v-too { color: #bf8700; }
.v-better { color: #cf222e; font-weight: bold; }
"""


def embed_png(png: bytes, alt: str) -> str:
    """An <img> holding `png` as a data URI."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{escape(alt)}">'


def document(title: str, heading: str, body: str, nav: Sequence[str] = ()) -> str:
    """The whole page: head and stylesheet, the heading, links to the section ids in `nav`,
    then `body`."""
    links = " ".join(f'<a href="#{s}">{escape(s.replace("-", " "))}</a>' for s in nav)
    menu = f"<nav>{links}</nav>\n" if nav else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape(heading)}</h1>\n{menu}{body}\n</body>\n</html>\n"
    )
