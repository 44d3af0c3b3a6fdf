"""Sphinx extension: the bibliography labelled as the text cites, by authors and year.

The references page lists each paper under the label a chapter's citation shows (``Hinton et al., 2012``),
rather than an alphabetic key (``HSK+12``) that matches nothing in the text. Two papers of the same authors and
year are told apart by a letter (``Gal and Ghahramani, 2016a`` and ``2016b``), in the text and in the list.
Used through ``bibtex_default_style: author_year_labels`` and ``bibtex_reference_style: label``.
"""

from __future__ import annotations

from collections import Counter
from string import ascii_lowercase

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def author_year(entry) -> str:
    """``Last, year`` for one author, ``Last and Last, year`` for two, ``Last et al., year`` for more."""
    names = [" ".join(person.last_names) for person in entry.persons.get("author", [])]
    if not names:
        raise ValueError(f"bibliography entry {entry.key!r} has no author: give it one in book/references.bib")
    shown = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
    return f"{shown.replace('{', '').replace('}', '')}, {entry.fields['year']}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year(entry) for entry in entries]
        shared = {label for label, n in Counter(labels).items() if n > 1}
        seen: Counter = Counter()
        for label in labels:
            if label in shared:
                yield label + ascii_lowercase[seen[label]]
                seen[label] += 1
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = "author_year_labels"
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", "author_year_labels", AuthorYearLabels)
    register_plugin("pybtex.style.formatting", "author_year_labels", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
